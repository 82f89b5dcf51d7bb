"""CSV and JSONL rows (columns mapped to task fields) and Reddit's data-export posts.csv."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from cope_local.drafting.tasks import Task, registry
from cope_local.importers.records import Record, Rejection, UnreadableFile, read_text

DATE_COLUMNS = ("date", "written_at", "created_at", "created_utc")
REDDIT_POST_COLUMNS = {"permalink", "subreddit", "title", "body"}


def column_map(task: Task, overrides: dict[str, str]) -> dict[str, str]:
    """task field -> source column; by default columns are named like the task's fields."""
    unknown = set(overrides) - set(task.fields)
    if unknown:
        raise UnreadableFile(
            f"--map names {', '.join(sorted(unknown))}, which task '{task.name}' does not have "
            f"(its fields: {', '.join(task.fields)})"
        )
    return {name: overrides.get(name, name) for name in task.fields}


def guess_task(columns: Iterable[str]) -> Task:
    """The one task whose fields are all columns; ambiguity is the user's call."""
    present = set(columns)
    matches = [t for t in registry().values() if set(t.fields) <= present]
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(t.name for t in matches) or "none"
    raise UnreadableFile(
        f"cannot tell the task from the columns {sorted(present)} (matching tasks: {names}); pass --task"
    )


def _row_to_record(row: dict, line: int, path: str, fields: dict[str, str], task: Task) -> Record | Rejection:
    values = {}
    for name, column in fields.items():
        value = row.get(column)
        if value is None:
            return Rejection(path, line, f"missing column '{column}' (task field '{name}')")
        if not isinstance(value, (str, int, float)):
            return Rejection(path, line, f"column '{column}' is not text")
        value = str(value).strip()
        if not value:
            return Rejection(path, line, f"empty '{column}'")
        values[name] = value
    written = next((str(row[c]) for c in DATE_COLUMNS if row.get(c)), None)
    output = values.pop(task.output)
    return Record(line, values, output, written_at=written)


def csv_rows(text: str) -> Iterator[tuple[int, dict]]:
    """(first line of the row, row) pairs; rows may span lines inside quotes."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        _ = reader.fieldnames  # reads the header row, which may itself span lines
        start = reader.line_num + 1
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as exc:
        raise _CsvBroken(start, str(exc)) from exc


class _CsvBroken(Exception):
    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line = line


def _header(text: str) -> list[str]:
    first = next(csv.reader(io.StringIO(text, newline="")), None)
    if not first:
        raise UnreadableFile("empty CSV file (no header row)")
    return [name.strip() for name in first]


def parse_csv(path: Path, task: Task | None, overrides: dict[str, str]) -> Iterator[Record | Rejection]:
    text = read_text(path)
    task = task or guess_task(_header(text))
    fields = column_map(task, overrides)
    missing = [c for c in fields.values() if c not in _header(text)]
    if missing:
        raise UnreadableFile(
            f"no column named {', '.join(missing)} for task '{task.name}'; "
            f"map one with --map FIELD=COLUMN (columns: {', '.join(_header(text))})"
        )
    try:
        for line, row in csv_rows(text):
            if None in row:
                yield Rejection(str(path), line, "more values than header columns")
                continue
            yield _with_task(_row_to_record(row, line, str(path), fields, task), task)
    except _CsvBroken as exc:
        yield Rejection(str(path), exc.line, f"malformed CSV, rest of file skipped: {exc}")


def parse_jsonl(path: Path, task: Task | None, overrides: dict[str, str]) -> Iterator[Record | Rejection]:
    text = read_text(path)
    rows: list[tuple[int, dict | Rejection]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append((number, Rejection(str(path), number, f"not valid JSON: {exc.msg}")))
            continue
        if not isinstance(value, dict):
            rows.append((number, Rejection(str(path), number, "not a JSON object")))
            continue
        rows.append((number, value))
    if task is None:
        first = next((row for _, row in rows if isinstance(row, dict)), None)
        if first is None:
            raise UnreadableFile("no JSON objects in this file")
        task = guess_task(first)
    fields = column_map(task, overrides)
    for number, row in rows:
        yield row if isinstance(row, Rejection) else _with_task(_row_to_record(row, number, str(path), fields, task), task)


def is_reddit_posts(text: str) -> bool:
    try:
        return REDDIT_POST_COLUMNS <= set(_header(text))
    except UnreadableFile:
        return False


def parse_reddit(path: Path, task: Task | None) -> Iterator[Record | Rejection]:
    """Reddit's export posts.csv: title -> the post task's input, body -> its output."""
    text = read_text(path)
    if not is_reddit_posts(text):
        raise UnreadableFile(
            "not a Reddit posts.csv (needs columns permalink, subreddit, title, body); "
            "comments.csv has no titles — import posts.csv"
        )
    task = task or registry()["post"]
    if len(task.inputs) != 1:
        raise UnreadableFile(f"task '{task.name}' needs {len(task.inputs)} inputs; Reddit posts give one title")
    try:
        for line, row in csv_rows(text):
            title, body = (row.get("title") or "").strip(), (row.get("body") or "").strip()
            if not title:
                yield Rejection(str(path), line, "post without a title")
            elif not body or body in ("[deleted]", "[removed]"):
                yield Rejection(str(path), line, "link or deleted post (no text body)")
            else:
                yield Record(line, {task.inputs[0]: title}, body, written_at=row.get("date") or None, task=task.name)
    except _CsvBroken as exc:
        yield Rejection(str(path), exc.line, f"malformed CSV, rest of file skipped: {exc}")


def _with_task(item: Record | Rejection, task: Task) -> Record | Rejection:
    if isinstance(item, Record):
        item.task = task.name
    return item
