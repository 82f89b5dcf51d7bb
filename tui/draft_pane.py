"""The Draft tab: profile, task, the task's fields, method and α/τ; streams the draft token by
token, compares two methods, shows where the contrast changed the user model's choice."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from cope_local.drafting.methods import DRAFT_METHODS, METHODS
from cope_local.drafting.tasks import get_task, registry
from cope_local.errors import CopeError
from cope_local.jobs.draft import prepare_for, save
from cope_local.progress import Cancel, Cancelled
from cope_local.store import drafts

from .pane import Pane

MENU = [(METHODS[name].short, name) for name in DRAFT_METHODS]


class DraftPane(Pane):
    BINDINGS = [("ctrl+g", "generate", "Generate"), ("escape", "cancel", "Cancel"), ("ctrl+r", "reject", "Reject")]

    def __init__(self) -> None:
        super().__init__()
        self.draft_id: int | None = None
        self.drafted_text = ""
        self.steps: list = []
        self.fields_task: str | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="draft-controls"):
            yield Select([], prompt="profile", id="profile")
            yield Select([(t, t) for t in registry()], value="headline", allow_blank=False, id="task")
            yield Select(MENU, value="cope", allow_blank=False, id="method")
            yield Select(MENU, prompt="compare with…", id="compare")
            yield Input(placeholder="α", id="alpha", restrict=r"[0-9.]*")
            yield Input(placeholder="τ", id="tau", restrict=r"[0-9.]*")
        yield VerticalScroll(id="fields")
        with Horizontal(id="draft-buttons"):
            yield Button("Generate", id="generate", variant="primary")
            yield Button("Cancel", id="cancel", disabled=True)
            yield Button("Accept", id="accept", disabled=True, variant="success")
            yield Button("Reject", id="reject", disabled=True, variant="warning")
            yield Button("Copy", id="copy", disabled=True)
            yield Label("", id="draft-status")
        with Horizontal(id="outputs"):
            yield TextArea("", id="draft-text", soft_wrap=True)
            yield TextArea("", id="compare-text", read_only=True, soft_wrap=True, classes="hidden")
        yield Static("", id="token-view")

    async def on_mount(self) -> None:
        self.reload()
        await self.build_fields("headline")

    def reload(self) -> None:
        people = [p["name"] for p in self.app.store.profiles() if p["kind"] == "person"]
        select = self.query_one("#profile", Select)
        current = select.value
        select.set_options([(name, name) for name in people])
        if current in people:
            select.value = current
        elif people:
            select.value = people[0]

    async def build_fields(self, task_name: str) -> None:
        if task_name == self.fields_task:
            return
        self.fields_task = task_name
        task = get_task(task_name)
        box = self.query_one("#fields", VerticalScroll)
        await box.remove_children()
        await box.mount_all([Input(placeholder=task.label(name), id=f"field-{name}") for name in task.inputs])

    async def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "task":
            await self.build_fields(str(event.value))
        elif event.select.id == "compare":
            self.query_one("#compare-text").set_class(event.value is Select.NULL, "hidden")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        handlers = {"generate": self.action_generate, "cancel": self.action_cancel, "accept": self.accept,
                    "reject": self.action_reject, "copy": self.copy}
        handlers[event.button.id]()

    # -- generation ---------------------------------------------------------------------------

    def request(self) -> dict:
        profile = self.query_one("#profile", Select).value
        if profile is Select.NULL:
            raise CopeError("no profile to draft for", hint="import some writing in the History tab first")
        task = str(self.query_one("#task", Select).value)
        inputs = {name: self.query_one(f"#field-{name}", Input).value for name in get_task(task).inputs}
        numbers = {k: float(v) for k in ("alpha", "tau") if (v := self.query_one(f"#{k}", Input).value.strip())}
        compare = self.query_one("#compare", Select).value
        return {"profile": str(profile), "task": task, "inputs": inputs, "numbers": numbers,
                "method": str(self.query_one("#method", Select).value),
                "compare": None if compare is Select.NULL else str(compare)}

    def action_generate(self) -> None:
        try:
            request = self.request()
        except CopeError as exc:
            self.app.notify(str(exc), severity="warning")
            return
        self.steps = []
        self.query_one("#draft-text", TextArea).text = ""
        self.query_one("#compare-text", TextArea).text = ""
        self.query_one("#token-view", Static).update("")
        self.set_busy(True, "drafting…")
        self.generate(request, self.new_job("draft"))

    @work(thread=True, group="draft", exclusive=True, exit_on_error=False)
    def generate(self, request: dict, cancel: Cancel) -> None:
        try:
            with self.app.open_store() as store:
                targets = [("#draft-text", request["method"])]
                if request["compare"]:
                    targets.append(("#compare-text", request["compare"]))
                for widget_id, method in targets:
                    prepared = prepare_for(store, request["profile"], request["task"], request["inputs"], method,
                                           **request["numbers"])
                    for note in prepared.notes:
                        self.app.call_from_thread(self.app.notify, note, severity="information")
                    for step in prepared.stream(cancel):
                        self.app.call_from_thread(self.append, widget_id, step)
                    if widget_id == "#draft-text":
                        draft_id = save(store, request["profile"], prepared)
                        self.app.call_from_thread(self.finished, prepared, draft_id)
        except Cancelled:
            self.app.call_from_thread(self.set_busy, False, "cancelled")
        except Exception as exc:  # the status says so; the app's one error handler shows the message
            self.app.call_from_thread(self.set_busy, False, "failed: " + str(exc).splitlines()[0])
            raise
        finally:
            self.app.call_from_thread(self.set_busy, False, None)

    def append(self, widget_id: str, step) -> None:
        area = self.query_one(widget_id, TextArea)
        area.text += step.text
        if widget_id == "#draft-text":
            self.steps.append(step)

    def finished(self, prepared, draft_id: int) -> None:
        self.draft_id = draft_id
        area = self.query_one("#draft-text", TextArea)
        area.text = self.drafted_text = area.text.strip()
        self.query_one("#token-view", Static).update(token_view(prepared))
        self.query_one("#draft-status", Label).update(
            f"draft #{draft_id} · {prepared.method} · {len(prepared.steps)} tokens · {prepared.tok_s:.0f} tok/s")
        for button in ("#accept", "#reject", "#copy"):
            self.query_one(button, Button).disabled = False
        area.focus()  # ready to edit (then Accept) or to reject (ctrl+r)

    def set_busy(self, busy: bool, status: str | None) -> None:
        self.query_one("#generate", Button).disabled = busy
        self.query_one("#cancel", Button).disabled = not busy
        if status is not None:
            self.query_one("#draft-status", Label).update(status)

    def action_cancel(self) -> None:
        self.cancel_job("draft")

    # -- keeping a draft ------------------------------------------------------------------------

    def accept(self) -> None:
        if self.draft_id is None:
            return
        text = self.query_one("#draft-text", TextArea).text
        try:
            writing_id = drafts.accept(self.app.store, self.draft_id, text)
        except CopeError as exc:
            self.app.notify(str(exc), severity="error")
            return
        edited = text.strip() != self.drafted_text
        self.app.notify(f"saved as writing #{writing_id}: it will shape the next retrain"
                        + (" (your edit, against the draft, teaches it what you prefer)" if edited else ""))
        for button in ("#accept", "#reject"):
            self.query_one(button, Button).disabled = True
        self.app.refresh_data()

    def action_reject(self) -> None:
        """Not like me: the next retrain learns from this draft against the text kept instead."""
        if self.draft_id is None or self.query_one("#reject", Button).disabled:
            return
        try:
            drafts.reject(self.app.store, self.draft_id)
        except CopeError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.app.notify(f"draft #{self.draft_id} rejected: draft again; what you accept then teaches the next "
                        "retrain against it")
        for button in ("#accept", "#reject"):
            self.query_one(button, Button).disabled = True

    def copy(self) -> None:
        self.app.copy_to_clipboard(self.query_one("#draft-text", TextArea).text)
        self.app.notify("copied")


def token_view(prepared) -> Text:
    """The draft with the tokens CoPe changed highlighted, then why (the implicit reward)."""
    text = Text()
    changed = []
    model = prepared.engine.model
    for step in prepared.steps:
        piece = model.piece(step.token).decode("utf-8", errors="replace")
        if step.choice.contrast_changed:
            text.append(piece, style="bold black on yellow")
            changed.append(step)
        else:
            text.append(piece)
    if not METHODS[prepared.method].contrast:
        return text
    text.append(f"\n\n{len(changed)} of {len(prepared.steps)} tokens changed by the contrast")
    for step in changed[:6]:
        chosen = model.piece(step.token).decode("utf-8", errors="replace")
        wanted = model.piece(step.choice.user_top).decode("utf-8", errors="replace")
        text.append(f"\n  {chosen!r} instead of {wanted!r}: reward {step.choice.reward:+.2f}, |V_head| {step.choice.head_size}")
    return text
