"""LaMP questions JSON and LongLaMP rows: every user's profile items become that user's history.

Both layouts are a list of `{id, input, profile: [...], (user | user_id | name)?}`; a profile
item's keys are the task's fields (LaMP-4 {text, title}, LongLaMP-3 {overall, description,
summary, reviewText}, ...). The questions themselves are left to `cope eval`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from cope_local.drafting.tasks import Task, registry
from cope_local.importers.records import Record, Rejection, UnreadableFile, line_of, read_text

USER_KEYS = ("user", "user_id", "name", "reviewerId")
# (profile item fields, a phrase in the question) -> task, for the field sets two tasks share.
_QUESTION_HINTS = {"title": "title for the following abstract", "abstract": "abstract for the title"}


def json_array_items(text: str) -> Iterator[tuple[int, object]]:
    """(offset, value) for each element of a top-level JSON array, so rejections get a line."""
    decoder = json.JSONDecoder()
    index = _skip_space(text, 0)
    if index >= len(text) or text[index] != "[":
        raise UnreadableFile("not a JSON list of questions (expected '[' at the start)")
    index = _skip_space(text, index + 1)
    while index < len(text) and text[index] != "]":
        try:
            value, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            raise UnreadableFile(f"invalid JSON at line {exc.lineno}: {exc.msg}") from exc
        yield index, value
        index = _skip_space(text, end)
        if index < len(text) and text[index] == ",":
            index = _skip_space(text, index + 1)
        elif index >= len(text) or text[index] != "]":
            raise UnreadableFile(f"invalid JSON at line {line_of(text, index)}: expected ',' or ']'")
    if index >= len(text):
        raise UnreadableFile("invalid JSON: the list is not closed (truncated file?)")


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def looks_like_lamp(text: str) -> bool:
    head = text.lstrip()[:4096]
    return head.startswith("[") and '"profile"' in head


def detect_task(questions: list[dict], path: Path) -> Task:
    outputs = path.with_name("outputs.json")
    if outputs.exists():
        try:
            label = str(json.loads(outputs.read_text("utf-8")).get("task", ""))
        except (ValueError, OSError, AttributeError):
            label = ""
        for marker, name in (("LaMP_4", "headline"), ("LaMP_5", "title")):
            if marker in label:
                return registry()[name]
    sample = next((q for q in questions if isinstance(q, dict) and q.get("profile")), None)
    if sample is None:
        raise UnreadableFile("no question has a profile to import")
    keys = set(sample["profile"][0]) if isinstance(sample["profile"][0], dict) else set()
    matches = [t for t in registry().values() if set(t.fields) <= keys]
    if len(matches) > 1:
        question = str(sample.get("input", "")).lower()
        matches = [t for t in matches if _QUESTION_HINTS.get(t.name, "\0") in question] or matches
    if len(matches) != 1:
        names = ", ".join(t.name for t in matches) or "none"
        raise UnreadableFile(f"cannot tell the task from profile fields {sorted(keys)} (matching: {names}); pass --task")
    return matches[0]


def parse(path: Path, task: Task | None, prefix: str | None) -> Iterator[Record | Rejection]:
    text = read_text(path)
    if '"golds"' in text[:200]:
        raise UnreadableFile("this is a LaMP outputs file; import the questions file beside it")
    items = list(json_array_items(text))
    task = task or detect_task([value for _, value in items], path)
    prefix = prefix or f"{path.parent.name or 'lamp'}"
    for offset, question in items:
        line = line_of(text, offset)
        if not isinstance(question, dict) or not isinstance(question.get("profile"), list):
            yield Rejection(str(path), line, "question without a 'profile' list")
            continue
        user = next((str(question[k]) for k in USER_KEYS if question.get(k)), None) or str(question.get("id", line))
        profile = f"{prefix}:{user}"
        for number, item in enumerate(question["profile"]):
            yield _item_record(item, number, line, str(path), profile, task)


def _item_record(item: object, number: int, line: int, path: str, profile: str, task: Task) -> Record | Rejection:
    where = f"user profile item {number}"
    if not isinstance(item, dict):
        return Rejection(path, line, f"{where}: not an object")
    where += f" (id {item['id']})" if "id" in item else ""
    values = {}
    for name in task.fields:
        value = item.get(name)
        if value is None or not str(value).strip():
            return Rejection(path, line, f"{where}: missing '{name}'")
        values[name] = str(value).strip()
    output = values.pop(task.output)
    return Record(line, values, output, written_at=item.get("date"), profile=profile, task=task.name)
