"""The person's own preference pairs for DPO (store.drafts: an edited or rejected draft against the
text the person kept), beside the Best-of-K pairs: which of them a retrain learns from. The
reference stays π_base, as for the synthetic pairs; a pair drafted by an older adapter still
counts (it says what the person prefers, whoever proposed it)."""

from __future__ import annotations

import json

REAL_PAIRS_SHARE = 0.5  # at most this share of DPO's pairs are the person's own (the newest first)


def chosen_for_training(pairs: list[dict], synthetic: int, share: float, held_out: list[dict]) -> list[dict]:
    """The newest of the person's `pairs` (newest first) that DPO learns from beside `synthetic`
    Best-of-K pairs: at most `share` of all pairs, and none on the inputs of a held-out item
    (tuning validates on those)."""
    unseen = {json.dumps(inputs, sort_keys=True) for inputs in held_out}
    usable = [p for p in pairs if json.dumps(p["inputs"], sort_keys=True) not in unseen]
    if share >= 1:
        return usable
    return usable[:int(share / (1 - share) * synthetic)]


def fingerprint_part(pairs: list[dict]) -> list:
    """What of the pairs makes a retrain's history differ (a new edit or rejection retrains)."""
    return sorted(json.dumps([p["inputs"], p["chosen"], p["rejected"]], sort_keys=True) for p in pairs)
