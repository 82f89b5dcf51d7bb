"""The rows of docs/benchmarks.md's per-shard table for one run of docs/protocol.md sections 2 and 3.

    .venv/bin/python docs/runs/shard-rows.py LABEL [RUNS]
    # LABEL: the start of a run's label, e.g. "mpv60 fold 0" (2a), "HuffPost" (2b),
    # "fresh mpv, history" or "fresh mpv, --edits" (3); RUNS: the workers' run folders (../eval-runs)

The queue script owns the names of the committed folders, run folders and labels
(`proof-at-scale.sh --where`); this reads what the workers committed (scores.json: the TAM;
machine.json: CPU and minutes) and, from the run folder's log, the training items (the first
"negatives i/N": one per training item; a shard resumed past that stage prints "?").
Prints only committed shards; names no author.
"""

import json
import re
import sys
from pathlib import Path

from queue_names import REPO, shards

from cope_local.eval.protocol import ranks_of


def cpu_of(machine: dict) -> str:
    name = re.sub(r"\(R\)|\(TM\)| Processor| \d+-Core.*", "", machine["cpu"]).strip()
    amx = "AMX (bf16)" if machine["amx"] else "no AMX (fp32)"
    return f"{name}, {machine['cores']} cores, {amx}"


def rows(label: str, runs: Path):
    last_cpu = None
    for kept, out, run, shard in shards(runs):
        if not run.startswith(label) or not (REPO / kept).exists():
            continue
        scores = json.loads((REPO / kept).read_text())
        machine = json.loads((REPO / kept).with_name("machine.json").read_text())
        cpu = cpu_of(machine)
        tams = ",".join(f for tam in scores["tams"] for f in tam["fingerprints"])
        log = Path(f"{out}.log")
        found = re.search(r"negatives \d+/(\d+)", log.read_text()) if log.exists() else None
        items = found.group(1) if found else "?"
        rank = ranks_of(scores)[scores["test_questions"][0]]  # one-user shards
        yield (f"| {run} | {shard} (user {rank}) | {'same machine' if cpu == last_cpu else cpu} | "
               f"{tams} | {items} | {machine['minutes']} min |")
        last_cpu = cpu


if __name__ == "__main__":
    runs = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO.parent / "eval-runs"
    print("\n".join(rows(sys.argv[1], runs)))
