"""First run: one screen that says what to import and how."""

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Markdown

TEXT = """\
# Welcome to cope-local

cope-local learns how **you** write from your own past writing, then drafts new text in your
voice. Everything stays on this machine.

**1. Import some of your writing** — in the *History* tab, or from a terminal:

- a folder of notes or posts: `cope import ~/notes --profile me --task post`
- sent mail: `cope import Sent.mbox --profile me`
- a spreadsheet: `cope import headlines.csv --profile me --task headline`
- your Reddit export: `cope import posts.csv --profile me`

**2. Train** your adapter in *Adapters & training* (or `cope train --profile me`).

**3. Draft** in the *Draft* tab. Accepted drafts become history for the next retrain.
"""


class WelcomeScreen(ModalScreen[None]):
    BINDINGS = [("escape", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="welcome"):
            with VerticalScroll(id="welcome-text"):
                yield Markdown(TEXT)
            yield Button("Got it", id="welcome-ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#welcome-ok", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss()
