"""A folder of .txt / .md files (or one such file): the title or first heading is the input, the rest the output."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from cope_local.drafting.tasks import Task
from cope_local.importers.records import Record, Rejection, UnreadableFile, read_text

SUFFIXES = {".txt", ".md", ".markdown"}
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def text_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def parse(path: Path, task: Task) -> Iterator[Record | Rejection]:
    if len(task.inputs) != 1:
        raise UnreadableFile(
            f"task '{task.name}' needs {len(task.inputs)} input fields; a text file gives one title — "
            "use CSV or JSONL for this task"
        )
    files = text_files(path)
    if not files:
        raise UnreadableFile("no .txt or .md files here")
    for file in files:
        try:
            text = read_text(file).replace("\r\n", "\n")
        except UnreadableFile as exc:
            yield Rejection(str(file), 1, str(exc))
            continue
        yield from _parse_document(file, text, task)


def _parse_document(file: Path, text: str, task: Task) -> Iterator[Record | Rejection]:
    meta: dict[str, str] = {}
    offset_lines = 0
    front = _FRONT_MATTER.match(text)
    if front:
        for line in front[1].splitlines():
            key, sep, value = line.partition(":")
            if sep:
                meta[key.strip().lower()] = value.strip().strip("\"'")
        offset_lines = front[0].count("\n")
        text = text[front.end():]
    lines = text.split("\n")
    title, title_line, body_start = meta.get("title"), offset_lines + 1, 0
    if not title:
        for index, line in enumerate(lines):
            if line.strip():
                heading = _HEADING.match(line)
                title = heading[1] if heading else line.strip()
                title_line, body_start = offset_lines + index + 1, index + 1
                break
    body = "\n".join(lines[body_start:]).strip()
    if not title:
        yield Rejection(str(file), 1, "empty file")
    elif not body:
        yield Rejection(str(file), title_line, "no text after the title")
    else:
        written = meta.get("date") or datetime.fromtimestamp(file.stat().st_mtime, timezone.utc).date().isoformat()
        yield Record(title_line, {task.inputs[0]: title}, body, written_at=written, source=str(file), task=task.name)
