"""The rows of docs/benchmarks.md's per-shard table for one run of docs/protocol.md section 2.

    .venv/bin/python docs/runs/shard-rows.py FOLD [RUNS]   # 2a: mpv fold 0, 1 or 2
    .venv/bin/python docs/runs/shard-rows.py hp [RUNS]     # 2b: HuffPost, 40 new users
    # RUNS: the workers' run folders (../eval-runs)

Reads what the workers committed (scores.json: the TAM; machine.json: the minutes) and, from the
run folder's log, the training items (the first "negatives i/N": one per training item; a shard resumed
past that stage prints "?").
Prints only committed shards; names no author.
"""

import json
import re
import sys
from pathlib import Path

from cope_local.eval.protocol import ranks_of

REPO = Path(__file__).resolve().parents[2]


def runs_of(which: str) -> tuple[str, int, str, str]:
    """(label, shards, committed folder, run folder prefix) of a run, as proof-at-scale.sh names them."""
    if which == "hp":
        return "HuffPost 40 new", 40, "eval-huffpost-40new", "hp40-s"
    fold = int(which)
    return f"mpv60 fold {fold}/3", 20, f"eval-mpv60-3fold/fold-{fold}", f"mpv60-f{fold}-s"


def rows(which: str, runs: Path):
    label, shards, committed, prefix = runs_of(which)
    for shard in range(shards):
        kept = REPO / "docs/results" / committed / f"shard-{shard}"
        if not (kept / "scores.json").exists():
            continue
        scores = json.loads((kept / "scores.json").read_text())
        machine = json.loads((kept / "machine.json").read_text())
        tams = ",".join(f for tam in scores["tams"] for f in tam["fingerprints"])
        log = runs / f"{prefix}{shard}.log"
        found = re.search(r"negatives \d+/(\d+)", log.read_text()) if log.exists() else None
        items = found.group(1) if found else "?"
        rank = ranks_of(scores)[scores["test_questions"][0]]  # one-user shards
        yield (
            f"| {label} | {shard}/{shards} (user {rank}) | same machine | "
            f"{tams} | {items} | {machine['minutes']} min |"
        )


if __name__ == "__main__":
    runs = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO.parent / "eval-runs"
    print("\n".join(rows(sys.argv[1], runs)))
