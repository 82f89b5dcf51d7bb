"""LaMP / LongLaMP evaluation data, metrics and reports (torch-free; `trainer.eval_suite` runs it).

Layouts: LaMP `questions.json` (`[{id, input, profile, user?}]`) with `outputs.json`
(`{task, golds: [{id, output}]}`); LongLaMP rows (`[{name|user_id, input, output, profile}]`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from .errors import CopeError
from .importers.lamp import USER_KEYS, detect_task, json_array_items
from .importers.records import UnreadableFile, line_of, read_text
from .tasks import Task

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
        raise CopeError(f"{path}: {exc}") from exc
    golds = _golds(path.with_name("outputs.json"))
    questions = []
    for offset, raw in items:
        where = f"{path}:{line_of(text, offset)}"
        if not isinstance(raw, dict) or "input" not in raw or not isinstance(raw.get("profile"), list):
            raise CopeError(f"{where}: a question needs 'input' and a 'profile' list")
        qid = str(raw.get("id", ""))
        gold = raw.get("output", golds.get(qid))
        if gold is None:
            raise CopeError(f"{where}: question {qid!r} has no gold output", hint="put outputs.json beside questions.json")
        profile = []
        for number, item in enumerate(raw["profile"]):
            missing = [f for f in task.fields if not str(item.get(f, "")).strip()] if isinstance(item, dict) else ["all"]
            if missing:
                raise CopeError(f"{where}: profile item {number} lacks {', '.join(missing)} for task '{task.name}'")
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
        raise CopeError(f"{path}: not a LaMP outputs file ({exc})") from exc


def split(questions: list[Question], n_test: int) -> tuple[list[Question], list[Question]]:
    """The paper's protocol: the users with the longest histories are the test users."""
    ranked = sorted(questions, key=lambda q: (-len(q.profile), q.id))
    return ranked[:n_test], ranked[n_test:]


def rouge(prediction: str, gold: str) -> tuple[float, float]:
    """ROUGE-1 and ROUGE-L F1, without stemming, as the paper's code."""
    scores = _scorer().score(gold, prediction)
    return scores["rouge1"].fmeasure, scores["rougeL"].fmeasure


@cache
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False)


def paired_bootstrap(a: list[float], b: list[float], rounds: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a - b and its 95 % CI over questions resampled with replacement."""
    diff = np.asarray(a) - np.asarray(b)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(rounds, len(diff)))].mean(axis=1)
    return float(diff.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarise(rows: list[dict], methods: list[str]) -> dict:
    """Per method: mean ROUGE-1/L, n, and CIs of its ROUGE-L difference from TAM and from OPPU."""
    by_method = {m: sorted((r for r in rows if r["method"] == m), key=lambda r: r["key"]) for m in methods}
    summary = {}
    for method, found in by_method.items():
        if not found:
            continue
        entry = {"rouge1": float(np.mean([r["rouge1"] for r in found])),
                 "rougeL": float(np.mean([r["rougeL"] for r in found])), "n": len(found)}
        for reference in ("tam", "oppu"):
            other = {r["key"]: r["rougeL"] for r in by_method.get(reference, [])}
            shared = [r for r in found if r["key"] in other]
            if reference != method and len(shared) > 1:
                mean, low, high = paired_bootstrap([r["rougeL"] for r in shared], [other[r["key"]] for r in shared])
                entry[f"vs_{reference}"] = {"diff": mean, "ci95": [low, high]}
        summary[method] = entry
    return summary


def markdown_table(summary: dict, labels: dict[str, str]) -> str:
    lines = ["| method | ROUGE-1 | ROUGE-L | n | ΔL vs TAM (95 % CI) | ΔL vs OPPU (95 % CI) |", "|---|---|---|---|---|---|"]
    for method, e in summary.items():
        cells = []
        for ref in ("tam", "oppu"):
            d = e.get(f"vs_{ref}")
            cells.append(f"{d['diff']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]" if d else "–")
        lines.append(f"| {labels.get(method, method)} | {e['rouge1']:.4f} | {e['rougeL']:.4f} | {e['n']} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def question_of(key: str, questions) -> str:
    """The test question an answer's key belongs to: itself, or "<id>" of an extra "<id>/h<i>"."""
    return key if key in questions else key.rsplit("/h", 1)[0]


def per_user_table(rows: list[dict], test_questions: list[str], shard: tuple[int, int], labels: dict[str, str]) -> str:
    """ROUGE-L per test user (numbered by rank over the whole run, never named) and method, with
    what per-user tuning chose. `rows`: in canonical order, each with its "key" (question id, or
    "<id>/h<i>" for an extra question)."""
    index, count = shard
    number = {question: index + k * count + 1 for k, question in enumerate(test_questions)}
    scores, tuned = {}, {}
    for row in rows:
        question = question_of(row["key"], number)
        scores.setdefault(question, {}).setdefault(row["method"], []).append(row["rougeL"])
        if "tuned" in row:
            tuned.setdefault(question, row["tuned"])
    methods = list(dict.fromkeys(m for by_method in scores.values() for m in by_method))
    extra = ["SFT lr", "α/τ"] if tuned else []
    lines = ["| user | " + " | ".join([labels.get(m, m) for m in methods] + extra) + " |",
             "|---" * (1 + len(methods) + len(extra)) + "|"]
    for question in test_questions:
        if question not in scores:
            continue
        cells = [f"{np.mean(scores[question][m]):.3f}".lstrip("0") if m in scores[question] else "–" for m in methods]
        if extra:
            chosen = tuned.get(question)
            cells += [f"{chosen['lr']:.0e}".replace("e-0", "e-") if chosen.get("lr") else "–",
                      "0" if not chosen.get("alpha") else f"{chosen['alpha']:g}/{chosen['tau']:g}"] if chosen else ["–", "–"]
        lines.append(f"| {number[question]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def whiskers(summary: dict) -> dict[str, tuple[float, float]]:
    """Per method, (below, above) its mean: the 95 % CI of its difference from TAM."""
    found = {}
    for method, entry in summary.items():
        d = entry.get("vs_tam")
        found[method] = (max(0.0, d["diff"] - d["ci95"][0]), max(0.0, d["ci95"][1] - d["diff"])) if d else (0.0, 0.0)
    return found


def chart(summary: dict, labels: dict[str, str], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(summary)
    spans = whiskers(summary)
    errors = [[spans[m][0] for m in methods], [spans[m][1] for m in methods]]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar([labels.get(m, m) for m in methods], [summary[m]["rougeL"] for m in methods], yerr=errors, capsize=4, color="#4c78a8")
    ax.set_ylabel("ROUGE-L F1")
    ax.set_title("ROUGE-L per method (whiskers: 95 % CI of the difference from TAM)")
    plt.xticks(rotation=20)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def text_chart(summary: dict, labels: dict[str, str], width: int = 40) -> str:
    """The same chart for a terminal: a bar per method, ├─┤ the whiskers, on one shared scale."""
    spans = whiskers(summary)
    top = max((e["rougeL"] + spans[m][1] for m, e in summary.items()), default=0.0) or 1.0
    cell = lambda value: min(width - 1, max(0, round(value / top * (width - 1))))  # noqa: E731
    lines = []
    for method, entry in summary.items():
        value = entry["rougeL"]
        canvas = ["█" if i < cell(value) else " " for i in range(width)]
        low, high = cell(value - spans[method][0]), cell(value + spans[method][1])
        if high > low:
            for i in range(low + 1, high):
                canvas[i] = "─" if canvas[i] == " " else canvas[i]
            canvas[low], canvas[high] = "├", "┤"
        lines.append(f"{labels.get(method, method)[:16]:<16} {''.join(canvas)} {value:.3f}")
    return "\n".join(lines)
