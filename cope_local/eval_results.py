"""What an eval run leaves behind — results.json, results.md, the chart and scores.json, written
from the answers in one canonical order — and `cope eval merge`, which puts the outputs of shards
(`--shard i/n`) back together into exactly what one machine would have written. scores.json is
results.json without any text or name (drafts, real outputs, users): what may be shared or kept
in a repository, and enough for `merge` where a shard's results.json is gone."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import CopeError
from .evaluation import chart, markdown_table, per_user_table, question_of, summarise
from .methods import LABELS, METHODS

# What must agree between shards for their answers to form one run.
SAME_IN_EVERY_SHARD = ("data_fingerprint", "task", "model")
# key: "id" in results.json; tuned (what per-user tuning chose) only where a user adapter was tuned.
ROW_FIELDS = ("key", "user", "method", "prediction", "gold", "rouge1", "rougeL", "tuned")
SCORE_FIELDS = ("id", "method", "rouge1", "rougeL", "tuned")


def write(out: Path, header: dict, rows: list[dict]) -> dict:
    """results.json / results.md / rougeL.png / scores.json of `rows`, already in canonical order
    (test user, then method as listed in the settings, then question)."""
    chosen = header["settings"]["methods"]
    summary = summarise(rows, [m for m in METHODS if m in chosen])
    result = {**header, "summary": summary,
              "questions": [{"id": r["key"], **{f: r[f] for f in ROW_FIELDS[1:] if f in r}} for r in rows]}
    (out / "results.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    scores = {**header, "summary": summary, "questions": [{f: q[f] for f in SCORE_FIELDS if f in q} for q in result["questions"]]}
    (out / "scores.json").write_text(json.dumps(scores, ensure_ascii=False, indent=1))
    per_user = per_user_table(rows, header["test_questions"], tuple(header["settings"]["shard"]), LABELS)
    (out / "results.md").write_text(markdown_table(summary, LABELS) + "\nROUGE-L per user:\n\n" + per_user)
    if summary:
        chart(summary, LABELS, out / "rougeL.png")
    return result


def merge(shards: list[Path], out: Path) -> dict:
    """One result from the outputs of every shard of a run; refuses shards that differ in data,
    task, model or settings (naming the difference) or that do not make up the whole run."""
    results = [_read(folder) for folder in shards]
    first = results[0]
    for folder, result in zip(shards[1:], results[1:]):
        for field in SAME_IN_EVERY_SHARD:
            if result.get(field) != first.get(field):
                raise CopeError(f"{folder} and {shards[0]} differ in {field}: {result.get(field)!r} vs {first.get(field)!r}",
                                hint="merge only the shards of one run")
        settings, reference = _without_shard(result["settings"]), _without_shard(first["settings"])
        for name in sorted(set(settings) | set(reference)):
            if settings.get(name) != reference.get(name):
                raise CopeError(f"{folder} and {shards[0]} were run with different {name}: "
                                f"{settings.get(name)!r} vs {reference.get(name)!r}", hint="merge only the shards of one run")
    count = first["settings"]["shard"][1]
    by_index = {result["settings"]["shard"][0]: result for result in results}
    if len(by_index) != len(results) or sorted(by_index) != list(range(count)):
        missing = sorted(set(range(count)) - set(by_index))
        raise CopeError(f"these outputs are not the {count} shards of one run"
                        + (f": shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing" if missing else ": a shard is given twice"),
                        hint="give every shard's --out folder once")
    questions = _interleave([by_index[i]["test_questions"] for i in range(count)])
    rows_of = {question: [] for question in questions}
    for result in results:
        for row in result["questions"]:
            rows_of[question_of(row["id"], rows_of)].append({**row, "key": row["id"]})
    header = {**first, "users": len(questions), "test_questions": questions, "settings": {**first["settings"], "shard": [0, 1]}}
    del header["summary"], header["questions"]
    out.mkdir(parents=True, exist_ok=True)
    return write(out, header, [row for question in questions for row in rows_of[question]])


def _read(folder: Path) -> dict:
    path = folder / "results.json"
    if not path.exists() and (folder / "scores.json").exists():
        path = folder / "scores.json"
    if not path.exists():
        raise CopeError(f"{path} does not exist", hint=f"finish that shard first (rerun its `cope eval … --out {folder}`)")
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        result["settings"]["shard"], result["test_questions"]  # noqa: B018 - fields every shard writes
    except (ValueError, KeyError, TypeError) as exc:
        raise CopeError(f"{path}: not the results of `cope eval` ({exc})", hint="rerun that shard to rewrite it") from exc
    return result


def _without_shard(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if k != "shard"}


def _interleave(lists: list[list[str]]) -> list[str]:
    """Shard i of n holds the test users' questions i, i+n, i+2n, …: back in the one-machine order."""
    order = []
    for position in range(max((len(users) for users in lists), default=0)):
        order.extend(users[position] for users in lists if position < len(users))
    return order
