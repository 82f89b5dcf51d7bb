"""The rows of docs/benchmarks.md's per-shard table for one fold of docs/protocol.md section 2a.

    .venv/bin/python docs/runs/shard-rows.py FOLD [RUNS]     # RUNS: the workers' run folders (../eval-runs)

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
SHARDS = 20


def rows(fold: int, runs: Path):
    for shard in range(SHARDS):
        kept = REPO / f"docs/results/eval-mpv60-3fold/fold-{fold}/shard-{shard}"
        if not (kept / "scores.json").exists():
            continue
        scores = json.loads((kept / "scores.json").read_text())
        machine = json.loads((kept / "machine.json").read_text())
        tams = ",".join(f for tam in scores["tams"] for f in tam["fingerprints"])
        log = runs / f"mpv60-f{fold}-s{shard}.log"
        found = re.search(r"negatives \d+/(\d+)", log.read_text()) if log.exists() else None
        items = found.group(1) if found else "?"
        rank = ranks_of(scores)[scores["test_questions"][0]]  # one-user shards
        yield (
            f"| mpv60 fold {fold}/3 | {shard}/{SHARDS} (user {rank}) | same machine | "
            f"{tams} | {items} | {machine['minutes']} min |"
        )


if __name__ == "__main__":
    runs = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO.parent / "eval-runs"
    print("\n".join(rows(int(sys.argv[1]), runs)))
