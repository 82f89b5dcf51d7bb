"""The shards of docs/runs/proof-at-scale.queue, named as the queue script names them: it owns the names
(`proof-at-scale.sh --where`); the scripts beside it ask it instead of repeating them."""

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def shards(runs: Path) -> list[list[str]]:
    """(committed scores.json, run folder, label, i/N) of every shard of the queue."""
    where = subprocess.run(["bash", str(REPO / "docs/runs/proof-at-scale.sh"), "--where"], check=True,
                           capture_output=True, text=True, env={**os.environ, "COPE_RUNS": str(runs)})
    return [line.split("\t") for line in where.stdout.splitlines()]
