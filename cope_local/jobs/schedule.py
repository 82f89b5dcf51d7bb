"""`cope schedule`: the nightly retrain as a systemd user timer (Linux) or a launchd agent (macOS).

The job runs at low priority and retrains only what changed (`cope train --all`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cope_local.errors import CopeError
from cope_local.store.keys import usable_keyring

NAME = "cope-local-train"
LAUNCHD_LABEL = "io.cope-local.train"


@dataclass
class ScheduleStatus:
    installed: bool
    loaded: bool | None  # None: the service manager could not be asked
    files: list[str]
    message: str


def command() -> list[str]:
    return [sys.executable, "-m", "cope_local", "train", "--all"]


def _environment() -> dict[str, str]:
    keep = {k: os.environ[k] for k in ("COPE_HOME",) if k in os.environ}
    return keep


def systemd_units(hour: int = 3) -> dict[str, str]:
    env = "".join(f"Environment={k}={v}\n" for k, v in _environment().items())
    service = (
        "[Unit]\nDescription=cope-local nightly retrain of changed adapters\n\n"
        "[Service]\nType=oneshot\n"
        f"ExecStart={' '.join(command())}\n{env}"
        "Nice=19\nIOSchedulingClass=idle\nCPUSchedulingPolicy=batch\n"
    )
    timer = (
        "[Unit]\nDescription=Run cope-local's retrain every night\n\n"
        f"[Timer]\nOnCalendar=*-*-* {hour:02d}:00:00\nPersistent=true\nRandomizedDelaySec=15min\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    return {f"{NAME}.service": service, f"{NAME}.timer": timer}


def launchd_plist(hour: int = 3) -> str:
    arguments = "".join(f"    <string>{part}</string>\n" for part in command())
    env = "".join(f"    <key>{k}</key><string>{v}</string>\n" for k, v in _environment().items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
        '<plist version="1.0">\n<dict>\n'
        f"  <key>Label</key><string>{LAUNCHD_LABEL}</string>\n"
        f"  <key>ProgramArguments</key>\n  <array>\n{arguments}  </array>\n"
        f"  <key>EnvironmentVariables</key>\n  <dict>\n{env}  </dict>\n"
        f"  <key>StartCalendarInterval</key>\n  <dict><key>Hour</key><integer>{hour}</integer><key>Minute</key><integer>0</integer></dict>\n"
        "  <key>LowPriorityIO</key><true/>\n  <key>Nice</key><integer>19</integer>\n"
        "</dict>\n</plist>\n"
    )


def _folder() -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "LaunchAgents"
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "systemd" / "user"


def _files() -> dict[Path, str]:
    folder = _folder()
    if sys.platform == "darwin":
        return {folder / f"{LAUNCHD_LABEL}.plist": launchd_plist()}
    return {folder / name: text for name, text in systemd_units().items()}


def _manager(*args: str) -> bool | None:
    """Run systemctl --user / launchctl; None when it is not available here (e.g. no user session)."""
    tool = "launchctl" if sys.platform == "darwin" else "systemctl"
    if shutil.which(tool) is None:
        return None
    full = [tool, *args] if tool == "launchctl" else [tool, "--user", *args]
    try:
        return subprocess.run(full, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return None


def install() -> ScheduleStatus:
    written = []
    for path, text in _files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(str(path))
    if sys.platform == "darwin":
        loaded = _manager("load", "-w", written[0])
    else:
        loaded = _manager("daemon-reload") and _manager("enable", "--now", f"{NAME}.timer")
    message = "nightly retrain scheduled" if loaded else "unit files written; load them when a user session is available"
    if usable_keyring() is None:  # the job cannot ask for the passphrase, and it is never written to disk
        message += ("; no OS keyring here, so the job needs COPE_PASSPHRASE in its environment "
                    "(e.g. `systemctl --user set-environment COPE_PASSPHRASE=…` after each login)")
    return ScheduleStatus(True, loaded, written, message)


def remove() -> ScheduleStatus:
    files = _files()
    if sys.platform == "darwin":
        _manager("unload", "-w", str(next(iter(files))))
    else:
        _manager("disable", "--now", f"{NAME}.timer")
    removed = []
    for path in files:
        if path.exists():
            path.unlink()
            removed.append(str(path))
    if sys.platform != "darwin":
        _manager("daemon-reload")
    return ScheduleStatus(False, False, removed, "nightly retrain removed" if removed else "was not scheduled")


def status() -> ScheduleStatus:
    files = _files()
    installed = all(path.exists() for path in files)
    if not installed:
        return ScheduleStatus(False, False, [], "not scheduled: cope schedule install")
    loaded = (_manager("list") if sys.platform == "darwin" else _manager("is-enabled", f"{NAME}.timer"))
    return ScheduleStatus(True, loaded, [str(p) for p in files],
                          "scheduled" if loaded else "unit files present but not loaded (no user service manager?)")


def require_posix() -> None:
    if os.name != "posix":
        raise CopeError("scheduling is implemented for Linux (systemd) and macOS (launchd)",
                        hint="use the Task Scheduler to run: cope train --all")
