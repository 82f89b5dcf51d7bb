"""One row that shows a long job's progress (stage step/total and a bar), for training and eval."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar

from cope_local.progress import Progress


class JobProgress(Horizontal):
    def compose(self) -> ComposeResult:
        yield Label("idle", classes="job-stage")
        yield ProgressBar(total=1, show_eta=False)

    def show(self, progress: Progress) -> None:
        self.query_one(".job-stage", Label).update(f"{progress.stage} {progress.step}/{progress.total}")
        self.query_one(ProgressBar).update(progress=progress.step, total=progress.total)

    def idle(self) -> None:
        self.query_one(".job-stage", Label).update("idle")
