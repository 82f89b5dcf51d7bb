"""The cope-local app: draft in your own voice, manage history, adapters and training, settings.

Long work (drafting, importing, training) runs in thread workers in named groups; one handler
turns any worker error into a readable notification, so the UI never blocks or crashes.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from cope_local.home import Home, ensure_home, remember_home_root
from cope_local.jobs.draft import close_engines
from cope_local.progress import Cancelled
from cope_local.store.database import Store

from .adapters_pane import AdaptersPane
from .draft_pane import DraftPane
from .eval_pane import EvalPane
from .history_pane import HistoryPane
from .pane import Pane
from .settings_pane import SettingsPane
from .welcome import WelcomeScreen


class CopeApp(App):
    CSS_PATH = "cope.tcss"
    TITLE = "cope-local"
    SUB_TITLE = "drafts in your own voice, on this machine"
    BINDINGS = [
        Binding("f1", "show('draft')", "Draft"),
        Binding("f2", "show('history')", "History"),
        Binding("f3", "show('adapters')", "Adapters"),
        Binding("f4", "show('eval')", "Eval"),
        Binding("f5", "show('settings')", "Settings"),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(self, home: Home | None = None):
        super().__init__()
        self.home = home or ensure_home()
        self.store = Store.open(self.home)  # the UI thread's connection; workers open their own

    def switch_home(self, root: Path) -> None:
        """Use another data folder from now on (created if new); the current one is left as it is."""
        home = ensure_home(root.expanduser())
        store = Store.open(home)  # raises a CopeError (e.g. no key) before anything changes
        self.store.close()
        self.home, self.store = home, store
        remember_home_root(home.root)
        self.refresh_data()

    def open_store(self) -> Store:
        """A connection for a worker thread (SQLite connections stay in their thread)."""
        return Store.open(self.home)

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="draft"):
            with TabPane("Draft", id="draft"):
                yield DraftPane()
            with TabPane("History", id="history"):
                yield HistoryPane()
            with TabPane("Adapters & training", id="adapters"):
                yield AdaptersPane()
            with TabPane("Eval", id="eval"):
                yield EvalPane()
            with TabPane("Settings", id="settings"):
                yield SettingsPane()
        yield Footer()

    def on_mount(self) -> None:
        if not any(p["kind"] == "person" for p in self.store.profiles()):
            self.push_screen(WelcomeScreen())

    def action_show(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.worker_state_changed(event)

    def worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one error handler (the panes forward theirs): a failed worker becomes a message,
        never a traceback; a cancelled job is news, not an error."""
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            if isinstance(error, Cancelled):
                self.notify(str(error), title=f"{event.worker.group} cancelled")
            else:
                self.notify(str(error), title=f"{event.worker.group} failed", severity="error", timeout=10)

    def refresh_data(self) -> None:
        """History changed (import, accept, delete): every pane re-reads what it shows."""
        for pane in self.query("DraftPane, HistoryPane, AdaptersPane"):
            pane.reload()

    def on_unmount(self) -> None:
        for pane in self.query(Pane):
            pane.cancel_jobs()  # a running draft stops at its next token; close_engines waits for it
        close_engines()  # loaded models and their contexts
        self.store.close()


def run(home: Path | None = None) -> None:
    CopeApp(ensure_home(home) if home else None).run()
