"""Inputs shared by benchmarks and tests: random (non-zero) LoRA adapters and sample articles."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cope_local.gguf.header import read_header
from cope_local.gguf.lora import write_lora_gguf
from cope_local.store.models import embedded_model_path

LORA_TARGETS = ("attn_q.", "attn_k.", "attn_v.", "attn_output.", "ffn_gate.", "ffn_up.", "ffn_down.")

# Written for this project (not from any dataset), so benchmarks run anywhere.
ARTICLES = [
    "The city council voted on Tuesday to build protected bike lanes on Main Street.",
    "A small bakery in Ohio has been selling the same sourdough recipe for 90 years.",
    "Scientists found that octopuses dream, changing colour while they sleep.",
    "The senator said she would not run again, ending a 30-year career in Washington.",
    "Heavy rain flooded the subway overnight and commuters waded to work.",
    "A teenager built a robot that sorts recycling faster than adults.",
    "The museum returned a stolen painting to the family after 80 years.",
    "Prices of eggs doubled this winter as bird flu hit farms across the country.",
]


def random_lora(path: Path, seed: int, rank: int = 8, std: float = 0.02, targets=LORA_TARGETS,
                base_path: Path | None = None) -> Path:
    """A LoRA GGUF on every listed projection of the base model, with random A and B."""
    base = read_header(base_path or embedded_model_path())
    rng = np.random.default_rng(seed)
    pairs = {}
    for name, info in base.tensors.items():
        if name.startswith("blk.") and any(t in name for t in targets):
            n_in, n_out = info.shape
            pairs[name] = (rng.normal(0, std, (rank, n_in)), rng.normal(0, std, (n_out, rank)))
    write_lora_gguf(path, base.architecture, pairs)
    return path
