"""The Adapters & training tab: each adapter version with its metrics, Retrain now (in the
background, with live progress), rollback, and the nightly schedule on/off."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Label, ProgressBar, Select, Switch
from textual.worker import get_current_worker

from cope_local import adapter_versions, schedule
from cope_local.errors import CopeError
from cope_local.tasks import registry


class TrainingCancelled(Exception):
    """Raised from the progress callback: the job stops, its finished stages are kept for resuming."""


class AdaptersPane(Vertical):
    def compose(self) -> ComposeResult:
        with Horizontal(id="adapter-controls"):
            yield Select([], prompt="profile", id="adapter-profile")
            yield Select([(t, t) for t in registry()], prompt="task", id="adapter-task")
            yield Button("Retrain now", id="retrain", variant="primary")
            yield Button("Cancel", id="cancel-training", disabled=True)
            yield Button("Rollback", id="rollback")
        with Horizontal(id="training-progress"):
            yield Label("idle", id="training-stage")
            yield ProgressBar(total=1, show_eta=False, id="training-bar")
        yield DataTable(id="adapter-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="schedule-row"):
            yield Label("Retrain every night (only what changed)", id="schedule-label")
            yield Switch(value=schedule.status().installed, id="schedule")

    def on_mount(self) -> None:
        self.query_one("#adapter-table", DataTable).add_columns("profile", "task", "kind", "version", "active", "trained", "items")
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
        for owner, v in adapter_versions.listing(store):
            table.add_row(owner, v.task, v.kind, f"v{v.version}", "●" if v.active else "",
                          v.created_at[:16].replace("T", " "), str(v.metrics.get("items", "")))

    def on_switch_changed(self, event: Switch.Changed) -> None:
        if event.switch.id == "schedule":
            result = schedule.install() if event.value else schedule.remove()
            self.app.notify(result.message)

    def selection(self) -> tuple[str, str | None]:
        profile = self.query_one("#adapter-profile", Select).value
        task = self.query_one("#adapter-task", Select).value
        if profile is Select.NULL:
            raise CopeError("choose a profile")
        return str(profile), None if task is Select.NULL else str(task)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel-training":
            self.workers.cancel_group(self, "train")
            return
        try:
            profile, task = self.selection()
        except CopeError as exc:
            self.app.notify(str(exc), severity="warning")
            return
        if event.button.id == "retrain":
            self.set_training(True)
            self.retrain(profile, task)
        elif event.button.id == "rollback":
            if task is None:
                self.app.notify("choose the task to roll back", severity="warning")
                return
            try:
                chosen = adapter_versions.rollback(self.app.store, task, "user", self.app.store.profile_id(profile))
            except CopeError as exc:
                self.app.notify(str(exc), severity="warning")
                return
            self.app.notify(f"{profile} [{task}] is back on v{chosen.version}")
            self.reload()

    @work(thread=True, group="train", exclusive=True, exit_on_error=False)
    def retrain(self, profile: str, task: str | None) -> None:
        try:
            from trainer.pipeline import Job
        except ImportError as exc:
            raise CopeError(f"training needs the train extra ({exc.name} is missing): pip install 'cope-local[train]'") from None
        worker = get_current_worker()

        def report(stage: str, step: int, total: int, loss: float) -> None:
            if worker.is_cancelled:
                raise TrainingCancelled("cancelled; finished stages are kept and the next run resumes them")
            self.app.call_from_thread(self.show_progress, stage, step, total)

        try:
            with self.app.open_store() as store:
                outcomes = Job(store, profile, report=report).run([task] if task else None)
            message = "; ".join(o.message for o in outcomes) or "nothing to train"
            self.app.call_from_thread(self.app.notify, message, title="training")
        finally:
            self.app.call_from_thread(self.set_training, False)

    def show_progress(self, stage: str, step: int, total: int) -> None:
        self.query_one("#training-stage", Label).update(f"{stage} {step}/{total}")
        self.query_one("#training-bar", ProgressBar).update(progress=step, total=total)

    def set_training(self, busy: bool) -> None:
        self.query_one("#retrain", Button).disabled = busy
        self.query_one("#cancel-training", Button).disabled = not busy
        if not busy:
            self.query_one("#training-stage", Label).update("idle")
            self.reload()
