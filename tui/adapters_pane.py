"""The Adapters & training tab: each adapter version with its metrics, Retrain now (in the
background, with live progress), rollback, and the nightly schedule on/off."""

from __future__ import annotations

import json
import signal
import subprocess

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Label, Select, Switch

from cope_local.drafting.tasks import registry
from cope_local.errors import CopeError
from cope_local.jobs import schedule
from cope_local.jobs.guard import Watched
from cope_local.progress import Cancel, Progress
from cope_local.store import adapter_registry

from .job_progress import JobProgress
from .pane import Pane


class AdaptersPane(Pane):
    job: Watched | None = None  # the retrain running in a child process
    def compose(self) -> ComposeResult:
        with Horizontal(id="adapter-controls"):
            yield Select([], prompt="profile", id="adapter-profile")
            yield Select([(t, t) for t in registry()], prompt="task", id="adapter-task")
            yield Button("Retrain now", id="retrain", variant="primary")
            yield Button("Cancel", id="cancel-training", disabled=True)
            yield Button("Rollback", id="rollback")
        yield JobProgress(id="training-progress")
        yield DataTable(id="adapter-table", cursor_type="row", zebra_stripes=True)
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="schedule-row"):
            yield Label("Retrain every night (only what changed)", id="schedule-label")
            yield Switch(value=schedule.status().installed, id="schedule")

    def on_mount(self) -> None:
        self.query_one("#adapter-table", DataTable).add_columns("profile", "task", "kind", "version", "active", "trained", "items",
                                                               "your edits")
        self.query_one("#runs-table", DataTable).add_columns("run", "profile", "task", "status", "stage", "done", "started", "message")
        self.reload()

    def reload(self) -> None:
        store = self.app.store
        people = [p["name"] for p in store.profiles() if p["kind"] == "person"]
        select = self.query_one("#adapter-profile", Select)
        current = select.value
        select.set_options([(n, n) for n in people])
        if current in people:
            select.value = current
        table = self.query_one("#adapter-table", DataTable)
        table.clear()
        for owner, v in adapter_registry.listing(store):
            table.add_row(owner, v.task, v.kind, f"v{v.version}", "●" if v.active else "",
                          v.created_at[:16].replace("T", " "), str(v.metrics.get("items", "")),
                          str((v.metrics.get("real_pairs") or {}).get("used", "")))
        runs = self.query_one("#runs-table", DataTable)
        runs.clear()
        for run in store.training_runs():  # recent retrains, newest first (the nightly job's too)
            runs.add_row(str(run["id"]), run["profile"], run["task"], run["status"], run["stage"] or "",
                         f"{run['progress']:.0%}", run["started_at"][:16].replace("T", " "), (run["message"] or "")[:60])

    def on_switch_changed(self, event: Switch.Changed) -> None:
        if event.switch.id == "schedule":
            result = schedule.install() if event.value else schedule.remove()
            self.app.notify(result.message)

    def selection(self) -> tuple[str, str | None]:
        profile = self.query_one("#adapter-profile", Select).value
        task = self.query_one("#adapter-task", Select).value
        if profile is Select.NULL:
            raise CopeError("choose a profile", hint="import some writing in the History tab first if there is none")
        return str(profile), None if task is Select.NULL else str(task)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel-training":
            if self.job and self.job.process.poll() is None:
                self.job.process.send_signal(signal.SIGINT)  # as Ctrl-C: the run stops and says so
            self.cancel_job("train")
            return
        try:
            profile, task = self.selection()
        except CopeError as exc:
            self.app.notify(str(exc), severity="warning")
            return
        if event.button.id == "retrain":
            self.set_training(True)
            self.retrain(profile, task, self.new_job("train"))
        elif event.button.id == "rollback":
            if task is None:
                self.app.notify("choose the task to roll back", severity="warning")
                return
            try:
                chosen = adapter_registry.rollback(self.app.store, task, "user", self.app.store.profile_id(profile))
            except CopeError as exc:
                self.app.notify(str(exc), severity="warning")
                return
            self.app.notify(f"{profile} [{task}] is back on v{chosen.version}")
            self.reload()

    @work(thread=True, group="train", exclusive=True, exit_on_error=False)
    def retrain(self, profile: str, task: str | None, cancel: Cancel) -> None:
        """`cope train` in a watched child process: a crash in native code there is reported
        here and cannot take the app down; Cancel interrupts it (finished stages are kept)."""
        argv = ["train", "--profile", profile, *(["--task", task] if task else []), "--json", "--progress-lines"]
        self.job = job = Watched(argv, stdout=subprocess.PIPE, env={"COPE_HOME": str(self.app.home.root)})
        result = []
        try:
            for line in job.process.stdout:
                if line.startswith("PROGRESS "):
                    progress = Progress(**json.loads(line[len("PROGRESS "):]))
                    self.app.call_from_thread(self.query_one(JobProgress).show, progress)
                else:
                    result.append(line)
            code, crash = job.finish()
            if crash:
                raise crash
            cancel.check("training cancelled; finished stages are kept and the next run resumes them")
            outcomes = json.loads("".join(result)) if code in (0, 1) and result else []
            message = "; ".join(o["message"] for o in outcomes) or f"training stopped (exit {code})"
            self.app.call_from_thread(self.app.notify, message, title="training")
        finally:
            if job.process.poll() is None:
                job.process.kill()
            self.app.call_from_thread(self.set_training, False)

    def set_training(self, busy: bool) -> None:
        self.query_one("#retrain", Button).disabled = busy
        self.query_one("#cancel-training", Button).disabled = not busy
        if not busy:
            self.query_one(JobProgress).idle()
            self.reload()
