"""The Eval tab: run `cope eval` from the app (data, task, users, methods), live progress, the table."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Input, Markdown, Select

from cope_local.drafting.methods import LABELS
from cope_local.drafting.tasks import registry
from cope_local.errors import needs_train_extra
from cope_local.eval.protocol import Settings
from cope_local.eval.reports import markdown_table, text_chart
from cope_local.progress import Cancel, Progress

from .job_progress import JobProgress
from .pane import Pane


class EvalPane(Pane):
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
        yield JobProgress(id="eval-progress")
        yield Markdown("", id="eval-results")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "eval-cancel":
            self.cancel_job("eval")
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
                      int(profile) if profile else None, methods, self.new_job("eval"))

    @work(thread=True, group="eval", exclusive=True, exit_on_error=False)
    def evaluate(self, data: Path, task: str | None, users: int, max_profile: int | None, methods: tuple,
                 cancel: Cancel) -> None:
        with needs_train_extra("evaluation"):
            from trainer.eval.runner import run

        def show(progress: Progress) -> None:
            self.app.call_from_thread(self.query_one(JobProgress).show, progress)

        out = self.app.home.root / "eval" / data.name
        try:
            result = run(data, out, task, Settings(users=users, max_profile=max_profile, methods=methods), show,
                         cancel=cancel)
            table = markdown_table(result["summary"], LABELS)
            chart = text_chart(result["summary"], LABELS)
            self.app.call_from_thread(self.query_one("#eval-results", Markdown).update,
                                      f"{table}\nROUGE-L (├─┤ by-user 95 % CI of the difference from TAM)\n\n"
                                      f"```\n{chart}\n```\n\nFiles: `{out}` (results.json, results.md, rougeL.png)")
        finally:
            self.app.call_from_thread(self.set_running, False)

    def set_running(self, running: bool) -> None:
        self.query_one("#eval-run", Button).disabled = running
        self.query_one("#eval-cancel", Button).disabled = not running
        if not running:
            self.query_one(JobProgress).idle()
