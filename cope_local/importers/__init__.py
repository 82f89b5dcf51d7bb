"""`cope import`: read files in any supported format and store the good rows in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from cope_local.drafting.tasks import Task, get_task
from cope_local.errors import CopeError
from cope_local.importers import folder, lamp, mbox, tabular
from cope_local.importers.records import ImportReport, Record, Rejection, UnreadableFile
from cope_local.progress import Cancel
from cope_local.store.database import Store

FORMATS = ("folder", "csv", "jsonl", "lamp", "longlamp", "mbox", "reddit")


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix in folder.SUFFIXES:
        return "folder"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise UnreadableFile(f"cannot read the file: {exc.strerror or exc}") from exc
    if suffix == ".mbox" or mbox.looks_like_mbox(head):
        return "mbox"
    text = head.decode("utf-8", errors="replace")
    if suffix == ".csv":
        return "reddit" if tabular.is_reddit_posts(text) else "csv"
    if suffix == ".json" or text.lstrip().startswith("["):
        return "lamp"
    raise UnreadableFile("cannot tell the format of this file; pass --format " + "|".join(FORMATS))


def parse_file(
    path: Path, fmt: str | None, task: Task | None, profile: str | None, mapping: dict[str, str]
) -> Iterator[Record | Rejection]:
    """Records and rejections from one path; raises UnreadableFile before yielding if it can't be read."""
    if not path.exists():
        raise UnreadableFile("no such file or folder")
    fmt = fmt or detect_format(path)
    if fmt == "folder":
        if task is None:
            raise UnreadableFile("text files can hold any kind of writing: pass --task (e.g. --task post)")
        return folder.parse(path, task)
    if fmt == "csv":
        return tabular.parse_csv(path, task, mapping)
    if fmt == "jsonl":
        return tabular.parse_jsonl(path, task, mapping)
    if fmt in ("lamp", "longlamp"):
        return lamp.parse(path, task, profile)
    if fmt == "mbox":
        return mbox.parse(path, task)
    if fmt == "reddit":
        return tabular.parse_reddit(path, task)
    raise CopeError(f"unknown format '{fmt}'", hint="use one of: " + ", ".join(FORMATS))


def run_import(
    store: Store,
    paths: Iterable[Path],
    profile: str | None,
    task_name: str | None = None,
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    kind: str = "person",
    cancel: Cancel | None = None,
) -> ImportReport:
    """Parse every path fully first, then write all good rows in ONE transaction. `cancel` is
    checked as it goes; once set, nothing is stored (Cancelled)."""
    task = get_task(task_name) if task_name else None
    report = ImportReport()
    parsed: list[tuple[Path, Record]] = []
    for path in paths:
        path = Path(path)
        if fmt not in ("lamp", "longlamp") and profile is None and _needs_profile(path, fmt):
            raise CopeError("which person wrote this? pass --profile NAME", hint="e.g. cope import notes/ --profile me --task post")
        try:
            for count, item in enumerate(parse_file(path, fmt, task, profile, mapping or {})):
                _stop_if(cancel, count)
                if isinstance(item, Rejection):
                    report.rejected.append(item)
                else:
                    parsed.append((path, item))
        except UnreadableFile as exc:
            report.unreadable.append(Rejection(str(path), 0, str(exc)))
    with store.transaction():
        profile_ids: dict[str, int] = {}
        for count, (path, record) in enumerate(parsed):
            _stop_if(cancel, count)
            name = record.profile or profile
            if name not in profile_ids:
                profile_ids[name] = store.ensure_profile(name, "eval" if record.profile else kind)
            new_id = store.add_writing(
                profile_ids[name],
                record.task or task.name,
                record.inputs,
                record.output,
                source_path=str((Path(record.source) if record.source else path).resolve()),
                source_line=record.line,
                written_at=record.written_at,
            )
            if new_id is None:
                report.duplicates += 1
            else:
                report.imported += 1
    return report


def _needs_profile(path: Path, fmt: str | None) -> bool:
    try:
        return (fmt or detect_format(path)) not in ("lamp", "longlamp")
    except UnreadableFile:
        return True


def _stop_if(cancel: Cancel | None, count: int) -> None:
    if cancel is not None and count % 200 == 0:
        cancel.check("import cancelled; nothing was stored")
