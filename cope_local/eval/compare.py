"""`cope eval compare A B`: two runs on the same users (another pipeline, another setting; e.g. a run
with --edits against one without), user by user. For each user, the difference a method makes
over a reference (e.g. CoPe − TAM) in each run, and how that difference moved from B to A, with the
by-user statistics (users resampled; a user's questions share one adapter)."""

from __future__ import annotations

import numpy as np

from cope_local.errors import CopeError
from cope_local.eval.metrics import by_user_bootstrap, wilcoxon_signed_rank
from cope_local.eval.protocol import ranks_of
from cope_local.eval.reports import question_of


def per_user_gain(result: dict, method: str, reference: str) -> dict[str, float]:
    """User (their official question's id) → mean ROUGE-L of `method` − `reference` over their questions."""
    scores = {(row["id"], row["method"]): row["rougeL"] for row in result["questions"]}
    gains: dict[str, list[float]] = {}
    for (key, name), value in scores.items():
        if name == method and (key, reference) in scores:
            gains.setdefault(question_of(key, result["test_questions"]), []).append(value - scores[(key, reference)])
    return {user: float(np.mean(values)) for user, values in gains.items()}


def compare(a: dict, b: dict, method: str = "cope", reference: str = "tam") -> dict:
    """How `method` − `reference` per user moved from run `b` to run `a` (users in both)."""
    if a.get("data_fingerprint") != b.get("data_fingerprint"):
        raise CopeError("the two runs used different data", hint="compare runs on the same data set")
    gain_a, gain_b = per_user_gain(a, method, reference), per_user_gain(b, method, reference)
    users = [u for u in a["test_questions"] if u in gain_a and u in gain_b]
    if not users:
        raise CopeError(f"no user has {method} and {reference} answers in both runs", hint="check --method and --reference")
    moved = {u: [gain_a[u] - gain_b[u]] for u in users}
    rank = ranks_of(a)
    mean, low, high = by_user_bootstrap(moved)
    per_user = [moved[u][0] for u in users]
    return {"method": method, "reference": reference, "users": len(users),
            "a": {"diff": float(np.mean([gain_a[u] for u in users])), "by_user": _ci({u: [gain_a[u]] for u in users})},
            "b": {"diff": float(np.mean([gain_b[u] for u in users])), "by_user": _ci({u: [gain_b[u]] for u in users})},
            "a_minus_b": {"diff": mean, "ci95": [low, high], "better": sum(d > 0 for d in per_user),
                          "worse": sum(d < 0 for d in per_user), "wilcoxon_p": wilcoxon_signed_rank(per_user)},
            "per_user": [{"user": rank[u], "a": gain_a[u], "b": gain_b[u]} for u in users]}


def _ci(values: dict[str, list[float]]) -> list[float]:
    _, low, high = by_user_bootstrap(values)
    return [low, high]


def markdown(found: dict, labels: dict[str, str]) -> str:
    what = f"{labels.get(found['method'], found['method'])} − {labels.get(found['reference'], found['reference'])}"
    d = found["a_minus_b"]
    lines = [f"{what}, per user ({found['users']} users): A {found['a']['diff']:+.4f} "
             f"[{found['a']['by_user'][0]:+.4f}, {found['a']['by_user'][1]:+.4f}], B {found['b']['diff']:+.4f} "
             f"[{found['b']['by_user'][0]:+.4f}, {found['b']['by_user'][1]:+.4f}]; A − B {d['diff']:+.4f} "
             f"[{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}] (by user, 95 %); {d['better']}/{d['worse']} users; "
             f"Wilcoxon p {d['wilcoxon_p']:.3f}", "", f"| user | A: {what} | B: {what} | A − B |", "|---|---|---|---|"]
    lines += [f"| {row['user']} | {row['a']:+.3f} | {row['b']:+.3f} | {row['a'] - row['b']:+.3f} |" for row in found["per_user"]]
    return "\n".join(lines) + "\n"
