"""The History tab: browse and full-text search a profile's writing per task, delete items,
and import files or folders with a preview of what will be stored."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Input, Select, Static

from cope_local.drafting.tasks import get_task, registry
from cope_local.errors import CopeError
from cope_local.importers import parse_file, run_import
from cope_local.importers.records import Rejection, UnreadableFile
from cope_local.progress import Cancel, Cancelled

from .pane import Pane


class HistoryPane(Pane):
    BINDINGS = [("delete", "delete_selected", "Delete item")]

    def compose(self) -> ComposeResult:
        with Horizontal(id="history-filters"):
            yield Select([], prompt="all profiles", id="history-profile")
            yield Select([(t, t) for t in registry()], prompt="all tasks", id="history-task")
            yield Input(placeholder="search your writing…", id="history-search")
        yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="import-row"):
            yield Input(placeholder="file or folder to import", id="import-path")
            yield Input(placeholder="profile", id="import-profile")
            yield Select([(t, t) for t in registry()], prompt="task (auto)", id="import-task")
            yield Button("Preview", id="preview")
            yield Button("Import", id="import", variant="primary")
        yield Static("", id="import-report")

    def on_mount(self) -> None:
        self.query_one("#history-table", DataTable).add_columns("#", "profile", "task", "date", "input", "text")
        self.reload()

    def reload(self) -> None:
        select = self.query_one("#history-profile", Select)
        current = select.value
        names = [p["name"] for p in self.app.store.profiles()]
        select.set_options([(n, n) for n in names])
        if current in names:
            select.value = current
        self.refresh_table()

    def refresh_table(self) -> None:
        profile = self.query_one("#history-profile", Select).value
        task = self.query_one("#history-task", Select).value
        search = self.query_one("#history-search", Input).value.strip()
        table = self.query_one("#history-table", DataTable)
        table.clear()
        items = self.app.store.writings(
            profile=None if profile is Select.NULL else str(profile),
            task=None if task is Select.NULL else str(task), search=search or None, limit=500)
        for item in items:
            table.add_row(str(item.id), item.profile, item.task, (item.written_at or item.created_at)[:10],
                          short(" | ".join(item.inputs.values()), 28), short(item.output, 40), key=str(item.id))

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id in ("history-profile", "history-task"):
            self.refresh_table()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "history-search":
            self.refresh_table()

    def action_delete_selected(self) -> None:
        table = self.query_one("#history-table", DataTable)
        if table.row_count == 0:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if self.app.store.delete_writing(int(key)):
            self.app.notify(f"deleted writing #{key}")
            self.app.refresh_data()

    # -- import ----------------------------------------------------------------------------------

    def import_request(self) -> tuple[Path, str | None, str | None]:
        path = self.query_one("#import-path", Input).value.strip()
        if not path:
            raise CopeError("give a file or folder to import", hint="its path, e.g. ~/notes")
        profile = self.query_one("#import-profile", Input).value.strip() or None
        task = self.query_one("#import-task", Select).value
        return Path(path).expanduser(), profile, None if task is Select.NULL else str(task)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "import" and self.importing:
            self.cancel_job("import")  # the import checks its token; nothing is stored
            return
        try:
            path, profile, task = self.import_request()
        except CopeError as exc:
            self.app.notify(str(exc), severity="warning")
            return
        if event.button.id == "preview":
            self.query_one("#import-report", Static).update(preview(path, profile, task))
        elif event.button.id == "import":
            self.query_one("#import-report", Static).update("importing…")
            self.set_importing(True)
            self.run_import(path, profile, task, self.new_job("import"))

    @property
    def importing(self) -> bool:
        return str(self.query_one("#import", Button).label) == "Cancel"

    def set_importing(self, busy: bool) -> None:
        button = self.query_one("#import", Button)
        button.label, button.variant = ("Cancel", "error") if busy else ("Import", "primary")

    @work(thread=True, group="import", exclusive=True, exit_on_error=False)
    def run_import(self, path: Path, profile: str | None, task: str | None, cancel: Cancel) -> None:
        try:
            with self.app.open_store() as store:
                report = run_import(store, [path], profile, task, cancel=cancel)
        except Cancelled as exc:
            self.app.call_from_thread(self.import_done, str(exc))
            return
        except BaseException:
            self.app.call_from_thread(self.set_importing, False)
            raise
        problems = [str(r) for r in [*report.unreadable, *report.rejected]]
        text = f"imported {report.imported}, already there {report.duplicates}, rejected {len(problems)}"
        self.app.call_from_thread(self.import_done, "\n".join([text, *problems[:8]]))

    def import_done(self, text: str) -> None:
        self.set_importing(False)
        self.query_one("#import-report", Static).update(text)
        self.app.refresh_data()


def preview(path: Path, profile: str | None, task: str | None) -> str:
    """What an import would store, without storing anything."""
    try:
        items = list(parse_file(path, None, get_task(task) if task else None, profile, {}))
    except (UnreadableFile, CopeError) as exc:
        return f"{path}: {exc}"
    good = [i for i in items if not isinstance(i, Rejection)]
    bad = [str(i) for i in items if isinstance(i, Rejection)]
    lines = [f"{len(good)} items to import, {len(bad)} rejected"]
    lines += [f"  {short(' | '.join(r.inputs.values()), 30)} → {short(r.output, 40)}" for r in good[:3]]
    lines += bad[:5]
    if not profile and not any(r.profile for r in good):
        lines.append("give a profile name before importing")
    return "\n".join(lines)


def short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
