"""An eval run's numbers as tables and charts: per method, per user, for a file and a terminal."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cope_local.eval.metrics import by_user_bootstrap, paired_bootstrap, wilcoxon_signed_rank


def summarise(rows: list[dict], methods: list[str], test_questions=()) -> dict:
    """Per method: mean ROUGE-1/L, n, and its ROUGE-L difference from TAM and from OPPU, with 95 %
    CIs by user (primary: users resampled, each user's questions averaged first; a Wilcoxon
    signed-rank test on the per-user means; how many users are better and worse) and by question."""
    by_method = {m: sorted((r for r in rows if r["method"] == m), key=lambda r: r["key"]) for m in methods}
    summary = {}
    for method, found in by_method.items():
        if not found:
            continue
        entry = {"rouge1": float(np.mean([r["rouge1"] for r in found])),
                 "rougeL": float(np.mean([r["rougeL"] for r in found])), "n": len(found),
                 "users": len({question_of(r["key"], test_questions) for r in found})}
        for reference in ("tam", "oppu"):
            other = {r["key"]: r["rougeL"] for r in by_method.get(reference, [])}
            shared = [r for r in found if r["key"] in other]
            if reference != method and len(shared) > 1:
                mean, low, high = paired_bootstrap([r["rougeL"] for r in shared], [other[r["key"]] for r in shared])
                differences: dict[str, list[float]] = {}
                for r in shared:
                    differences.setdefault(question_of(r["key"], test_questions), []).append(r["rougeL"] - other[r["key"]])
                entry[f"vs_{reference}"] = {"by_user": by_user(differences), "diff": mean, "ci95": [low, high]}
        summary[method] = entry
    return summary


def by_user(differences: dict[str, list[float]]) -> dict:
    """The by-user statistics of paired differences grouped by user."""
    mean, low, high = by_user_bootstrap(differences)
    per_user = [float(np.mean(values)) for values in differences.values()]
    return {"diff": mean, "ci95": [low, high], "users": len(per_user), "better": sum(d > 0 for d in per_user),
            "worse": sum(d < 0 for d in per_user), "wilcoxon_p": wilcoxon_signed_rank(per_user)}


def markdown_table(summary: dict, labels: dict[str, str]) -> str:
    """Per method; each difference by user first (the primary statistic), then by question."""
    lines = ["| method | ROUGE-1 | ROUGE-L | n | users | ΔL vs TAM by user (95 % CI; better/worse; Wilcoxon p) "
             "| ΔL vs TAM by question (95 % CI) | ΔL vs OPPU by user (95 % CI; better/worse; Wilcoxon p) "
             "| ΔL vs OPPU by question (95 % CI) |", "|---|---|---|---|---|---|---|---|---|"]
    for method, e in summary.items():
        cells = []
        for ref in ("tam", "oppu"):
            d = e.get(f"vs_{ref}")
            if not d:
                cells += ["–", "–"]
                continue
            u = d.get("by_user")
            cells.append(f"{u['diff']:+.4f} [{u['ci95'][0]:+.4f}, {u['ci95'][1]:+.4f}]; {u['better']}/{u['worse']}; "
                         f"p {u['wilcoxon_p']:.3f}" if u else "–")
            cells.append(f"{d['diff']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]")
        lines.append(f"| {labels.get(method, method)} | {e['rouge1']:.4f} | {e['rougeL']:.4f} | {e['n']} | "
                     f"{e.get('users', '–')} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def question_of(key: str, questions) -> str:
    """The test question an answer's key belongs to: itself, or "<id>" of an extra "<id>/h<i>"."""
    return key if key in questions else key.rsplit("/h", 1)[0]


def per_user_table(rows: list[dict], number: dict[str, int], labels: dict[str, str]) -> str:
    """ROUGE-L per test user (`number`: each test question's rank over the whole run, never a
    name) and method, with what per-user tuning chose. `rows`: in canonical order, each with its
    "key" (question id, or "<id>/h<i>" for an extra question)."""
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
    for question in number:
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
    """Per method, (below, above) its mean: the by-user 95 % CI of its difference from TAM."""
    found = {}
    for method, entry in summary.items():
        d = (entry.get("vs_tam") or {}).get("by_user") or entry.get("vs_tam")
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
    ax.set_title("ROUGE-L per method (whiskers: by-user 95 % CI of the difference from TAM)")
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
