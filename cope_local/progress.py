"""A rich progress bar per training stage for the CLI."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class StageProgress:
    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._progress = Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("loss {task.fields[loss]:.3f}"), TimeElapsedColumn(), transient=False)
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> "StageProgress":
        if self.enabled:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._progress.stop()

    def update(self, stage: str, step: int, total: int, loss: float) -> None:
        if not self.enabled:
            return
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(stage, total=total, loss=loss)
        self._progress.update(self._tasks[stage], completed=step, total=total, loss=loss)
