"""The Settings tab: model, threads, llama.cpp buffers, data folder."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Input, Label, Select, Static

from cope_local.engine.loader import MODES
from cope_local.errors import CopeError
from cope_local.store import models

from .pane import Pane


class SettingsPane(Pane):
    def compose(self) -> ComposeResult:
        with Horizontal(classes="setting"):
            yield Label("Model", classes="setting-label")
            store = self.app.store
            names = [models.EMBEDDED_NAME, *[m.name for m in models.added(store)]]
            yield Select([(n, n) for n in names], value=models.default_name(store), allow_blank=False, id="settings-model")
        with Horizontal(classes="setting"):
            yield Label("Threads per context", classes="setting-label")
            yield Input(placeholder="1", id="settings-threads", restrict=r"[0-9]*")
            yield Label("llama.cpp buffers", id="buffers-label")
            yield Select([(m, m) for m in MODES], value=store.setting(models.BUFFERS_SETTING, "auto"), allow_blank=False,
                         id="settings-buffers")
        with Horizontal(classes="setting"):
            yield Label("Data folder", classes="setting-label")
            yield Input(str(self.app.home.root), id="settings-home")
        yield Static("", id="settings-buffers-state")
        yield Static("Add a local GGUF from a terminal: cope models add PATH. A new data folder starts empty;\n"
                     "the current one stays where it is (COPE_HOME, when set, wins at the next start).",
                     id="settings-help")
        yield Button("Save", id="settings-save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#settings-threads", Input).value = self.app.store.setting("threads", "") or ""
        self.show_buffers()

    @work(thread=True, group="settings", exclusive=True, exit_on_error=False)
    def show_buffers(self) -> None:
        """The buffer mode in use and the CPU features llama.cpp sees (a first probe takes ~1 s)."""
        with self.app.open_store() as store:
            report = models.buffers_report(store)
        text = (f"in use: {report['mode']} ({report['reason']})\n"
                f"CPU features llama.cpp sees: {' '.join(report['cpu_features']) or 'none reported'}")
        self.app.call_from_thread(self.query_one("#settings-buffers-state", Static).update, text)

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
            models.set_buffers(store, str(self.query_one("#settings-buffers", Select).value))
            threads = self.query_one("#settings-threads", Input).value.strip()
            if threads:
                store.set_setting("threads", str(max(1, int(threads))))
        except CopeError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.app.notify(f"saved: drafting with {chosen.name}")
        self.show_buffers()
