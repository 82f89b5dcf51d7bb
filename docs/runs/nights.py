"""What each night of docs/protocol.md section 3 learned from and cost, per user: real pairs used
(of those available), Best-of-K pairs, what tuning chose, and the stage times, read from the
adapters in the run folders' stores. The protocol reports them beside its statistic; the stores
hold author names and go with the machine, so `--keep` writes each committed shard's as
nights.json beside its scores.json (no names, no texts), and the table reads those.

    COPE_PASSPHRASE=eval-runs .venv/bin/python docs/runs/nights.py [--keep] [RUNS] [SCORES]
    # SCORES: keep only this shard's (its committed scores.json, as the worker passes it)
"""

import json
import sys
from pathlib import Path

from queue_names import REPO, shards

from cope_local.home import Home
from cope_local.store import adapter_registry
from cope_local.store.database import Store

METRICS = ("real_pairs", "negatives", "tuning", "timings")  # of an adapter's, what the table reads


def nights_in(store_root: Path, task: str) -> list[dict]:
    """The test user's adapter versions, oldest first, with what the table needs of their metrics."""
    with Store.open(Home(store_root)) as store:
        (person,) = store.conn.execute("SELECT id FROM profiles WHERE kind = 'person'").fetchone()
        found = reversed(adapter_registry.versions(store, task, "user", person))
        return [{"version": v.version, **{k: v.metrics[k] for k in METRICS if k in v.metrics}} for v in found]


def minutes(night: dict) -> str:
    return f"{sum(night.get('timings', {}).values()) / 60:.0f}"


def row(run: str, shard: str, nights: list[dict], resumed: bool) -> str:
    last = nights[-1]
    real = last.get("real_pairs") or {}
    tuned = last.get("tuning") or {}
    chosen = f"{tuned.get('lr', '–')}, {tuned.get('alpha', '–')}/{tuned.get('tau', '–')}"
    cost = " + ".join(minutes(n) for n in nights)
    # a resumed night times only the stages it ran after the resume (the store keeps the rest)
    cost += " min (resumed: stages run in its last session)" if resumed else " min"
    return (f"| {run} | {shard} | {len(nights)} | {real.get('used', 0)}/{real.get('available', 0)} | "
            f"{(last.get('negatives') or {}).get('pairs', '–')} | {chosen} | {cost} |")


def main(keep: bool, runs: Path, only: str | None) -> None:
    print("| run | shard | nights | real pairs used/available | Best-of-K pairs | lr, α/τ | training (min per night) |")
    print("|---|---|---|---|---|---|---|")
    for kept, out, run, shard in shards(runs):
        if not run.startswith("fresh mpv") or not (REPO / kept).exists():
            continue
        file = (REPO / kept).with_name("nights.json")
        if keep and only in (None, kept) and (Path(out) / "store/cope.db").exists():
            task = json.loads((REPO / kept).read_text())["task"]
            file.write_text(json.dumps(nights_in(Path(out) / "store", task), indent=1) + "\n")
        if file.exists():
            machine = json.loads((REPO / kept).with_name("machine.json").read_text())
            print(row(run, shard, json.loads(file.read_text()), machine.get("attempts", 1) > 1))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--keep"]
    main("--keep" in sys.argv[1:], Path(args[0]) if args else REPO.parent / "eval-runs", args[1] if len(args) > 1 else None)
