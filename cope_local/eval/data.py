"""LaMP / LongLaMP evaluation data: questions with their gold outputs and profiles, and the data's identity.

Layouts: LaMP `questions.json` (`[{id, input, profile, user?}]`) with `outputs.json`
(`{task, golds: [{id, output}]}`); LongLaMP rows (`[{name|user_id, input, output, profile}]`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from cope_local.drafting.tasks import Task
from cope_local.errors import CopeError
from cope_local.importers.lamp import USER_KEYS, detect_task, json_array_items
from cope_local.importers.records import UnreadableFile, line_of, read_text

# The question text before the task's input, per task (LaMP / LongLaMP phrasing).
_INPUT_PATTERNS = {
    "headline": [r"headline for the following article:\s*(?P<text>.*)"],
    "title": [r"title for the following abstract of a paper:\s*(?P<abstract>.*)"],
    "abstract": [r"abstract for the title\s*\"?(?P<title>.*?)\"?\s*$"],
    "post": [r"reddit post\s*(?:post:)?\s*(?P<summary>.*)"],
    "review": [r"overall rating of \"(?P<overall>[^\"]*)\".*description \"(?P<description>.*)\"\. The summary of the review text is \"(?P<summary>.*)\""],
}


@dataclass
class Question:
    id: str
    user: str
    inputs: dict[str, str]
    gold: str
    profile: list[tuple[dict, str, str | None]]  # (inputs, output, date), oldest first


def question_inputs(task: Task, text: str, where: str) -> dict[str, str]:
    for pattern in _INPUT_PATTERNS.get(task.name, []):
        match = re.search(pattern, text, re.S)
        if match:
            return {k: v.strip() for k, v in match.groupdict().items()}
    if len(task.inputs) == 1:
        return {task.inputs[0]: text.split(":", 1)[-1].strip()}
    raise CopeError(f"{where}: cannot read the {task.name} fields from the question input", hint="check the task (--task)")


def load(data: Path, task: Task | None = None) -> tuple[Task, list[Question]]:
    """Questions with their gold outputs and profiles; malformed files are errors naming the place."""
    path = data / "questions.json" if data.is_dir() else data
    try:
        text = read_text(path)
        items = list(json_array_items(text))
        task = task or detect_task([value for _, value in items], path)
    except UnreadableFile as exc:
        raise CopeError(f"{path}: {exc}", hint="give a LaMP questions.json or LongLaMP rows file") from exc
    golds = _golds(path.with_name("outputs.json"))
    questions = []
    for offset, raw in items:
        where = f"{path}:{line_of(text, offset)}"
        if not isinstance(raw, dict) or "input" not in raw or not isinstance(raw.get("profile"), list):
            raise CopeError(f"{where}: a question needs 'input' and a 'profile' list", hint="fix that question, or remove it")
        qid = str(raw.get("id", ""))
        gold = raw.get("output", golds.get(qid))
        if gold is None:
            raise CopeError(f"{where}: question {qid!r} has no gold output", hint="put outputs.json beside questions.json")
        profile = []
        for number, item in enumerate(raw["profile"]):
            missing = [f for f in task.fields if not str(item.get(f, "")).strip()] if isinstance(item, dict) else ["all"]
            if missing:
                raise CopeError(f"{where}: profile item {number} lacks {', '.join(missing)} for task '{task.name}'",
                               hint="check the task (--task), or fix that item")
            profile.append(({f: str(item[f]).strip() for f in task.inputs}, str(item[task.output]).strip(), item.get("date")))
        profile.sort(key=lambda entry: entry[2] or "")
        user = next((str(raw[k]) for k in USER_KEYS if raw.get(k)), qid)
        questions.append(Question(qid, user, question_inputs(task, str(raw["input"]), where), str(gold), profile))
    return task, questions


def data_fingerprint(data: Path) -> str:
    """Identity of an eval data set (its questions and gold outputs), wherever it lies."""
    path = data / "questions.json" if data.is_dir() else data
    digest = hashlib.sha256()
    for part in (path, path.with_name("outputs.json")):
        digest.update(part.read_bytes() if part.exists() else b"")
    return digest.hexdigest()[:16]


def _golds(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
        return {str(g["id"]): str(g["output"]) for g in data["golds"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise CopeError(f"{path}: not a LaMP outputs file ({exc})", hint='it needs {"golds": [{"id": …, "output": …}]}') from exc
