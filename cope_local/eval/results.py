"""What an eval run leaves behind — results.json, results.md, the chart and scores.json, written
from the answers in one canonical order — and `cope eval merge`, which puts the outputs of shards
(`--shard i/n`) and folds (`--fold k/n`) back together into exactly what one machine would have
written. scores.json is results.json without any text or name (drafts, real outputs, users): what
may be shared or kept in a repository, and enough for `merge` where a shard's results.json is
gone. Every result names the task adapter (TAM) its numbers came from, and its seed."""

from __future__ import annotations

import json
from pathlib import Path

from cope_local.drafting.methods import LABELS, METHODS
from cope_local.errors import CopeError
from cope_local.eval.protocol import PARTITION, ranks, ranks_of
from cope_local.eval.reports import chart, markdown_table, per_user_table, question_of, summarise

# What must agree between shards for their answers to form one run (and every setting but PARTITION).
SAME_IN_EVERY_SHARD = ("data_fingerprint", "task", "model")
# key: "id" in results.json; tuned (what per-user tuning chose) only where a user adapter was tuned.
ROW_FIELDS = ("key", "user", "method", "prediction", "gold", "rouge1", "rougeL", "tuned")
SCORE_FIELDS = ("id", "method", "rouge1", "rougeL", "tuned")
NOT_RECORDED = "not recorded"  # shards written before results named their TAM


def write(out: Path, header: dict, rows: list[dict]) -> dict:
    """results.json / results.md / rougeL.png / scores.json of `rows`, already in canonical order
    (test user, then method as listed in the settings, then question)."""
    chosen = header["settings"]["methods"]
    summary = summarise(rows, [m for m in METHODS if m in chosen], header["test_questions"])
    result = {**header, "summary": summary,
              "questions": [{"id": r["key"], **{f: r[f] for f in ROW_FIELDS[1:] if f in r}} for r in rows]}
    (out / "results.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    scores = {**header, "summary": summary, "questions": [{f: q[f] for f in SCORE_FIELDS if f in q} for q in result["questions"]]}
    (out / "scores.json").write_text(json.dumps(scores, ensure_ascii=False, indent=1))
    per_user = per_user_table(rows, ranks_of(header), LABELS)
    (out / "results.md").write_text(provenance(header) + "\n" + markdown_table(summary, LABELS)
                                    + "\nROUGE-L per user:\n\n" + per_user)
    if summary:
        chart(summary, LABELS, out / "rougeL.png")
    return result


def provenance(header: dict) -> str:
    """Which TAM (the fingerprint of its adapter file; none: the plain base model) and seed the
    numbers came from, per fold, with a warning where the shards of one fold used different TAMs
    (and, for a partial merge, which shards it lacks)."""
    seed = header["settings"].get("seed", 0)
    lines = []
    if header.get("partial"):
        part = header["partial"]
        missing = ", ".join(part["missing"]) if len(part["missing"]) <= 6 else f"{len(part['missing'])} (listed in scores.json)"
        lines.append(f"- PARTIAL: {part['shards']} of {part['of']} shards; missing: {missing}")
    for entry in header.get("tams") or [{"fold": [0, 1], "fingerprints": [NOT_RECORDED]}]:
        fold, folds = entry["fold"]
        named = ", ".join(p or "none (the plain base model)" for p in entry["fingerprints"])
        warning = f" — its shards used {len(entry['fingerprints'])} different TAMs" if len(entry["fingerprints"]) > 1 else ""
        lines.append(f"- {f'fold {fold}/{folds}: ' if folds > 1 else ''}TAM {named}, seed {seed}{warning}")
    return "Task adapters (TAM) and seed:\n\n" + "\n".join(lines) + "\n"


def merge(shards: list[Path], out: Path, partial: bool = False) -> dict:
    """One result from the outputs of every shard (of every fold) of a run; refuses shards that
    differ in data, task, model or settings (naming the difference) or that do not make up the
    whole run (unless `partial`: what finished, named as such, users keeping their ranks);
    reports, never hides, shards of one fold that used different TAMs."""
    results = [read(folder) for folder in shards]
    first = results[0]
    for folder, result in zip(shards[1:], results[1:]):
        for field in SAME_IN_EVERY_SHARD:
            if result.get(field) != first.get(field):
                raise CopeError(f"{folder} and {shards[0]} differ in {field}: {result.get(field)!r} vs {first.get(field)!r}",
                                hint="merge only the shards of one run")
        settings, reference = _protocol(result["settings"]), _protocol(first["settings"])
        for name in sorted(set(settings) | set(reference)):
            if settings.get(name) != reference.get(name):
                raise CopeError(f"{folder} and {shards[0]} were run with different {name}: "
                                f"{settings.get(name)!r} vs {reference.get(name)!r}", hint="merge only the shards of one run")
    by_part = {}
    for result in results:
        key = (tuple(result["settings"].get("fold", (0, 1))), tuple(result["settings"]["shard"]))
        if key in by_part:
            raise CopeError(f"these outputs are not the shards of one run: shard {key[1][0]}/{key[1][1]}"
                            + (f" of fold {key[0][0]}/{key[0][1]}" if key[0][1] > 1 else "") + " is given twice",
                            hint="give every shard's --out folder once")
        by_part[key] = result
    folds = first["settings"].get("fold", (0, 1))[1]
    shards_per_fold = first["settings"]["shard"][1]
    missing = [f"{s}/{shards_per_fold}" + (f" of fold {f}/{folds}" if folds > 1 else "")
               for f in range(folds) for s in range(shards_per_fold) if ((f, folds), (s, shards_per_fold)) not in by_part]
    if (missing and not partial) or len(by_part) + len(missing) != folds * shards_per_fold:
        raise CopeError(f"these outputs are not the {folds * shards_per_fold} shards of one run"
                        + (f": shard(s) {', '.join(missing)} missing" if missing else ""),
                        hint="give every shard's --out folder once")
    parts = [[by_part.get(((f, folds), (s, shards_per_fold))) for s in range(shards_per_fold)] for f in range(folds)]
    questions = _interleave([_interleave([part["test_questions"] for part in fold if part]) for fold in parts])
    rows_of = {question: [] for question in questions}
    for result in results:
        for row in result["questions"]:
            rows_of[question_of(row["id"], rows_of)].append({**row, "key": row["id"]})
    tams = []
    for f in range(folds):
        used = {p for part in parts[f] if part for entry in part.get("tams")
                or [{"fingerprints": [NOT_RECORDED]}] for p in entry["fingerprints"]}
        if used:  # (a partial merge may have no shard of a fold yet)
            tams.append({"fold": [f, folds], "fingerprints": sorted(used, key=str)})
    header = {**first, "users": len(questions), "test_questions": questions, "tams": tams,
              "settings": {**first["settings"], "shard": [0, 1], "fold": [0, 1]}}
    for field in ("summary", "questions"):  # recomputed from the rows
        header.pop(field, None)
    if missing:
        header["partial"] = {"shards": len(by_part), "of": folds * shards_per_fold, "missing": missing}
        header["ranks"] = {q: r for part in by_part.values() for q, r in ranks(part["test_questions"], part["settings"]).items()}
    out.mkdir(parents=True, exist_ok=True)
    return write(out, header, [row for question in questions for row in rows_of[question]])


def read(folder: Path) -> dict:
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


def _protocol(settings: dict) -> dict:
    """The settings that make a run what it is: all but how it was split over machines."""
    return {k: v for k, v in settings.items() if k not in PARTITION}


def _interleave(lists: list[list[str]]) -> list[str]:
    """Part i of n holds the users i, i+n, i+2n, …: back in the order of the whole."""
    order = []
    for position in range(max((len(users) for users in lists), default=0)):
        order.extend(users[position] for users in lists if position < len(users))
    return order
