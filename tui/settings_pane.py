"""The Settings tab (model, threads, data folder) and the Eval tab."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Markdown, ProgressBar, Select, Static
from textual.worker import get_current_worker

from cope_local import models
from cope_local.errors import CopeError
from cope_local.tasks import registry


class SettingsPane(Vertical):
    def compose(self) -> ComposeResult:
        with Horizontal(classes="setting"):
            yield Label("Model", classes="setting-label")
            store = self.app.store
            names = [models.EMBEDDED_NAME, *[m.name for m in models.added(store)]]
            yield Select([(n, n) for n in names], value=models.default_name(store), allow_blank=False, id="settings-model")
        with Horizontal(classes="setting"):
            yield Label("Threads per context", classes="setting-label")
            yield Input(placeholder="1", id="settings-threads", restrict=r"[0-9]*")
        with Horizontal(classes="setting"):
            yield Label("Data folder", classes="setting-label")
            yield Input(str(self.app.home.root), id="settings-home")
        yield Static("Add a local GGUF from a terminal: cope models add PATH. A new data folder starts empty;\n"
                     "the current one stays where it is (COPE_HOME, when set, wins at the next start).",
                     id="settings-help")
        yield Button("Save", id="settings-save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#settings-threads", Input).value = self.app.store.setting("threads", "") or ""

    def on_button_pressed(self, event: Button.Pressed) -> None:
        folder = Path(self.query_one("#settings-home", Input).value.strip() or ".").expanduser()
        try:
            if folder.resolve() != self.app.home.root.resolve():
                self.app.switch_home(folder)  # the model and threads are that folder's own settings
                self.app.notify(f"data folder: {self.app.home.root}")
                return
        except (CopeError, OSError) as exc:
            self.app.notify(str(exc), severity="error")
            return
        store = self.app.store
        try:
            chosen = models.set_default(store, str(self.query_one("#settings-model", Select).value))
            threads = self.query_one("#settings-threads", Input).value.strip()
            if threads:
                store.set_setting("threads", str(max(1, int(threads))))
        except CopeError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.app.notify(f"saved: drafting with {chosen.name}")


class EvalPane(Vertical):
    """Run `cope eval` from the app: pick data, task, users and methods; live progress; the table."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="eval-controls"):
            yield Input(placeholder="LaMP data folder", id="eval-data")
            yield Select([(t, t) for t in registry()], prompt="task (auto)", id="eval-task")
            yield Input(value="2", placeholder="users", id="eval-users", restrict=r"[0-9]*")
            yield Input(placeholder="max profile", id="eval-profile", restrict=r"[0-9]*")
        with Horizontal(id="eval-buttons"):
            yield Input(value="base,tam,oppu,cope", id="eval-methods")
            yield Button("Run", id="eval-run", variant="primary")
            yield Button("Cancel", id="eval-cancel", disabled=True)
        with Horizontal(id="eval-progress"):
            yield Label("idle", id="eval-stage")
            yield ProgressBar(total=1, show_eta=False, id="eval-bar")
        yield Markdown("", id="eval-results")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "eval-cancel":
            self.workers.cancel_group(self, "eval")
            return
        data = self.query_one("#eval-data", Input).value.strip()
        if not data or not Path(data).expanduser().exists():
            self.app.notify("give the folder with questions.json (and outputs.json)", severity="warning")
            return
        task = self.query_one("#eval-task", Select).value
        users = int(self.query_one("#eval-users", Input).value or 1)
        profile = self.query_one("#eval-profile", Input).value
        methods = tuple(m.strip() for m in self.query_one("#eval-methods", Input).value.split(",") if m.strip())
        self.set_running(True)
        self.evaluate(Path(data).expanduser(), None if task is Select.NULL else str(task), users,
                      int(profile) if profile else None, methods)

    @work(thread=True, group="eval", exclusive=True, exit_on_error=False)
    def evaluate(self, data: Path, task: str | None, users: int, max_profile: int | None, methods: tuple) -> None:
        try:
            from trainer.eval_suite import LABELS, Settings, run
        except ImportError as exc:
            raise CopeError(f"evaluation needs the train extra ({exc.name} is missing)") from None
        from cope_local.evaluation import markdown_table, text_chart

        worker = get_current_worker()

        def progress(stage: str, step: int, total: int) -> None:
            if worker.is_cancelled:
                raise CopeError("evaluation cancelled; a rerun continues where it stopped")
            self.app.call_from_thread(self.show_progress, stage, step, total)

        out = self.app.home.root / "eval" / data.name
        try:
            result = run(data, out, task, Settings(users=users, max_profile=max_profile, methods=methods), progress)
            table = markdown_table(result["summary"], LABELS)
            chart = text_chart(result["summary"], LABELS)
            self.app.call_from_thread(self.query_one("#eval-results", Markdown).update,
                                      f"{table}\nROUGE-L (├─┤ 95 % CI of the difference from TAM)\n\n"
                                      f"```\n{chart}\n```\n\nFiles: `{out}` (results.json, results.md, rougeL.png)")
        finally:
            self.app.call_from_thread(self.set_running, False)

    def show_progress(self, stage: str, step: int, total: int) -> None:
        self.query_one("#eval-stage", Label).update(f"{stage} {step}/{total}")
        self.query_one("#eval-bar", ProgressBar).update(progress=step, total=total)

    def set_running(self, running: bool) -> None:
        self.query_one("#eval-run", Button).disabled = running
        self.query_one("#eval-cancel", Button).disabled = not running
        if not running:
            self.query_one("#eval-stage", Label).update("idle")
