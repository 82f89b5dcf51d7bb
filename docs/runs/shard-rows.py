"""The rows of docs/benchmarks.md's per-shard table for one fold of docs/protocol.md section 2a.

    python docs/runs/shard-rows.py FOLD [RUNS]     # RUNS: the workers' run folders (../eval-runs)

Reads what the workers committed (scores.json: the TAM; machine.json: the minutes) and, from the
run folder's log, the training items (the first "negatives 0/N": one per training item).
Prints only committed shards; names no author.
"""

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FOLDS, SHARDS = 3, 20


def rows(fold: int, runs: Path):
    for shard in range(SHARDS):
        kept = REPO / f"docs/results/eval-mpv60-3fold/fold-{fold}/shard-{shard}"
        if not (kept / "scores.json").exists():
            continue
        scores = json.loads((kept / "scores.json").read_text())
        machine = json.loads((kept / "machine.json").read_text())
        tams = ",".join(f for tam in scores["tams"] for f in tam["fingerprints"])
        log = runs / f"mpv60-f{fold}-s{shard}.log"
        found = re.search(r"negatives 0/(\d+)", log.read_text()) if log.exists() else None
        items = found.group(1) if found else "?"
        # fold k tests the authors ranked k+1, k+4, … by history length (the protocol, 2a)
        rank = shard * FOLDS + fold + 1
        yield (
            f"| mpv60 fold {fold}/{FOLDS} | {shard}/{SHARDS} (user {rank}) | same machine | "
            f"{tams} | {items} | {machine['minutes']} min |"
        )


if __name__ == "__main__":
    runs = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO.parent / "eval-runs"
    print("\n".join(rows(int(sys.argv[1]), runs)))
