"""The Settings tab (model, threads, data folder) and the Eval tab."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select, Static

from cope_local import models
from cope_local.errors import CopeError


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
            yield Static(str(self.app.home.root), id="settings-home")
        yield Static("Add a local GGUF from a terminal: cope models add PATH (COPE_HOME moves the data folder).",
                     id="settings-help")
        yield Button("Save", id="settings-save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#settings-threads", Input).value = self.app.store.setting("threads", "") or ""

    def on_button_pressed(self, event: Button.Pressed) -> None:
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
    def compose(self) -> ComposeResult:
        yield Static(
            "The LaMP / LongLaMP evaluation suite (cope eval) is not part of this version yet.\n"
            "Meanwhile, drafting speed and memory: cope bench decode --json; training: cope bench train --data DIR.",
            id="eval-note",
        )
