"""Long jobs (train, eval, bench) run in a child process that the `cope` process watches.

If llama.cpp (or any native code) kills the child by a signal, the parent says which model and
adapters llama.cpp was working on (the child leaves a note: engine.backend.note_activity), what to
try, and exits non-zero. Nothing stored is harmed: a retrain activates its adapter only after
the smoke check, in one transaction; the parent also closes the run's 'running' row as failed.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import click

from cope_local.errors import CopeError

GUARDED = "COPE_GUARDED"  # set in the child: it does the work itself
LONG_JOBS = ("train", "eval", "bench")
CRASH_EXIT = 70


def supervise(argv: list[str]) -> None:
    """In the parent, run `cope ARGV` as a watched child and exit with its status; in the child
    (or for short commands) return at once and let the command run here."""
    if os.environ.get(GUARDED):
        faulthandler.enable()  # a native crash still prints where Python was
        if os.environ[GUARDED].isdigit():
            _die_with(int(os.environ[GUARDED]))
        return
    if argv and argv[0] in LONG_JOBS:
        sys.exit(run_watched(argv))


class Watched:
    """`cope ARGV` (or `command`) in a child process that never outlives this one; `finish()`
    waits and says how it ended. Used by the CLI for long jobs and by the app for retrains."""

    def __init__(self, argv: list[str], command: list[str] | None = None, stdout=None, env: dict | None = None):
        from cope_local.store.database import utc_now

        self.argv, self.started = argv, utc_now()
        self.home = (env or {}).get("COPE_HOME")  # the data folder the child works in, if not ours
        self._folder = tempfile.TemporaryDirectory(prefix="cope-guard-")
        self.note = Path(self._folder.name) / "activity"
        env = {**os.environ, **(env or {}), GUARDED: str(os.getpid()), "COPE_CRASH_NOTE": str(self.note)}
        self.process = subprocess.Popen(command or [sys.executable, "-m", "cope_local", *argv], env=env,
                                        stdout=stdout, text=stdout is not None, stdin=subprocess.DEVNULL)

    def finish(self) -> tuple[int, CopeError | None]:
        """The exit code, and if a signal killed the child, the error to show the person (the
        interrupted training-run rows are closed as failed)."""
        try:
            code = _wait(self.process)
            if code >= 0:
                return code, None
            activity = self.note.read_text(encoding="utf-8") if self.note.exists() else "starting up"
            _close_interrupted_runs(self.started, activity, self.home)
            return code, crash_error(self.argv[0], -code, activity)
        finally:
            self._folder.cleanup()


def run_watched(argv: list[str], command: list[str] | None = None) -> int:
    """Run `cope ARGV` watched; its exit code, or CRASH_EXIT after saying what crashed."""
    code, crash = Watched(argv, command).finish()
    if crash:
        click.echo(f"Error: {crash}", err=True)
        return CRASH_EXIT
    return code


def _die_with(parent: int) -> None:
    """The child never outlives its parent (killed, it must not go on and activate an adapter):
    Linux kills it with the parent; elsewhere a watchdog thread notices within 0.2 s."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(CRASH_EXIT)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(CRASH_EXIT)

    threading.Thread(target=watch, daemon=True, name="cope-guard").start()


def _wait(child: subprocess.Popen) -> int:
    """The child's status; Ctrl-C reaches the child too (same process group): let it finish."""
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue


def crash_error(job: str, signum: int, activity: str) -> CopeError:
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    return CopeError(f"`cope {job}` crashed inside native code ({name}) while {activity}.\n"
                     "  Nothing was activated: the database and the active adapters are as they were.",
                     hint=f"try again with llama.cpp's plain buffers: COPE_LLAMA_BUFFERS=plain cope {job} … "
                          "(or for good: cope models buffers plain)", exit_code=CRASH_EXIT)


def _close_interrupted_runs(since: str, activity: str, home: str | None) -> None:
    from cope_local.home import ensure_home
    from cope_local.store.database import Store

    try:
        with Store.open(ensure_home(Path(home)) if home else None) as store:
            store.fail_running_training(since, f"crashed in native code while {activity}")
    except CopeError:
        pass  # no database to tidy (e.g. a benchmark): the message above is what matters
