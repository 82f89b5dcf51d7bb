"""What every tab's content shares: its workers' failures reach the app's one error handler (a
worker's state messages go to the widget that started it and do not bubble), and each job it
starts has one Cancel token (cope_local.progress) that its Cancel button sets."""

from __future__ import annotations

from textual.containers import Vertical
from textual.worker import Worker

from cope_local.progress import Cancel


class Pane(Vertical):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cancels: dict[str, Cancel] = {}  # the running (or last) job of each worker group

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.app.worker_state_changed(event)

    def new_job(self, group: str) -> Cancel:
        """The Cancel token of a job about to start in worker group `group`."""
        self.cancels[group] = Cancel()
        return self.cancels[group]

    def cancel_job(self, group: str) -> None:
        """Ask the job of `group` to stop (where it checks its token) and cancel its worker."""
        if group in self.cancels:
            self.cancels[group].set()
        self.workers.cancel_group(self, group)

    def cancel_jobs(self) -> None:
        for group in list(self.cancels):
            self.cancel_job(group)
