"""The rows of docs/benchmarks.md's per-shard table for one run of docs/protocol.md sections 2 and 3.

    .venv/bin/python docs/runs/shard-rows.py LABEL [RUNS]
    # LABEL: the start of a run's label, e.g. "mpv60 fold 0" (2a), "HuffPost" (2b),
    # "fresh mpv, history" or "fresh mpv, --edits" (3); RUNS: the workers' run folders (../eval-runs)

The queue script owns the names of the committed folders, run folders and labels
(`proof-at-scale.sh --where`); this reads what the workers committed (scores.json: the TAM;
machine.json: CPU, minutes and attempts) and the training items: one Best-of-K pair each, of the
first night in nights.json (section 3) or the first "negatives i/N" of the run folder's log
(section 2; a log that starts past that stage prints "?").
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


def items_of(kept: str, out: str) -> str:
    nights = (REPO / kept).with_name("nights.json")
    if nights.exists():
        first, *later = json.loads(nights.read_text())
        return f"{first['negatives']['pairs']}{' (night 1)' if later else ''}"
    log = Path(f"{out}.log")
    found = re.search(r"negatives \d+/(\d+)", log.read_text()) if log.exists() else None
    return found.group(1) if found else "?"


def rows(label: str, runs: Path):
    last_cpu = None
    for kept, out, run, shard in shards(runs):
        if not run.startswith(label) or not (REPO / kept).exists():
            continue
        scores = json.loads((REPO / kept).read_text())
        machine = json.loads((REPO / kept).with_name("machine.json").read_text())
        cpu = cpu_of(machine)
        tams = ",".join(f for tam in scores["tams"] for f in tam["fingerprints"])
        rank = ranks_of(scores)[scores["test_questions"][0]]  # one-user shards
        attempts = machine.get("attempts", 1)
        yield (f"| {run} | {shard} (user {rank}) | {'same machine' if cpu == last_cpu else cpu} | "
               f"{tams} | {items_of(kept, out)} | {machine['minutes']} min"
               f"{f' over {attempts} sessions' if attempts > 1 else ''} |")
        last_cpu = cpu


if __name__ == "__main__":
    runs = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO.parent / "eval-runs"
    print("\n".join(rows(sys.argv[1], runs)))
