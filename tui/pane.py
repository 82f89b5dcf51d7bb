"""What every tab's content shares: its workers' failures reach the app's one error handler
(a worker's state messages go to the widget that started it and do not bubble)."""

from __future__ import annotations

from textual.containers import Vertical
from textual.worker import Worker


class Pane(Vertical):
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.app.worker_state_changed(event)
