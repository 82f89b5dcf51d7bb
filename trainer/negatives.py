"""Best-of-K candidates for DPO: K distinct samples of each item from π_base (T=1, top-p .95),
drawn with llama.cpp until end-of-text or the drafting limit (a one-line task's: to its first
line, as its drafts end), and remembered per π_base so that a nightly retrain samples only the
items it has not sampled before (π_base does not change between nights; which sample is the
negative is decided afresh by the new π_user)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from cope_local.drafting.draft import first_line, text_of
from cope_local.engine.decoding import Sampling
from cope_local.engine.engine import Engine
from cope_local.engine.llama import Context
from cope_local.engine.loader import Loading
from cope_local.engine.sampling import sample_continuations
from cope_local.gguf.files import fingerprint
from cope_local.progress import Progress, Report

K = 3
GROUP = 8  # items sampled at once in one context (K sequences each)
CELLS = 24576  # KV cells of the sampling context, which bounds its memory (≈ 560 MB for SmolLM2-135M)
ROUNDS = 3  # sampling rounds for items that de-duplication left short of K
SAMPLING = Sampling(temperature=1.0, top_p=0.95)


class Remembered:
    """What one π_base gave for each item, one JSON line per item (keyed by a hash of, e.g., its
    prompt ids), in the line's `field`: its samples ("texts"), or its log-probs of the real output
    and those samples ("logps"). A line cut short by a kill is ignored, and a later line for an
    item replaces an earlier one. Without a path it remembers for this run only."""

    def __init__(self, path: Path | None, field: str = "texts"):
        self.path, self.field, self.known = path, field, {}
        if path and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self.known[row["key"]] = row[field]
                except (json.JSONDecodeError, KeyError):
                    continue

    @staticmethod
    def key(item) -> str:
        return hashlib.sha256(json.dumps(item).encode()).hexdigest()[:24]

    def get(self, item) -> list:
        return list(self.known.get(self.key(item), []))

    def add(self, items: list, values: list[list]) -> None:
        for item, value in zip(items, values):
            self.known[self.key(item)] = value
        if self.path:
            with self.path.open("a", encoding="utf-8") as handle:
                for item, value in zip(items, values):
                    handle.write(json.dumps({"key": self.key(item), self.field: value}, ensure_ascii=False) + "\n")


def remembered_file(folder: Path, base: Path, tam: Path | None, limit: int, one_line: bool) -> Path:
    """Where the samples of π_base = `base` + `tam` at this limit (and line rule) are kept, in `folder`."""
    identity = [fingerprint(base), fingerprint(tam) if tam else None, K, limit, SAMPLING.temperature, SAMPLING.top_p]
    identity += ["one line"] if one_line else []  # earlier files (whole samples) keep their names
    return folder / f"samples-{hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]}.jsonl"


def logps_file(samples: Path) -> Path:
    """Where π_base's log-probs of those items are kept: beside the samples (the same π_base)."""
    return samples.with_suffix(".base-logps.jsonl")


def sample(model: Path, tam: Path | None, loading: Loading | None, prompts: list[list[int]], limit: int,
           one_line: bool, threads: int, rng: np.random.Generator, remembered: Remembered, report: Report) -> list[list[str]]:
    """K distinct non-empty sample texts per prompt, up to GROUP prompts sampled at once (a prompt
    leaves as soon as its K samples have ended, and the next takes its place); those that
    de-duplication leaves short of K are sampled again (a few rounds). Each prompt's samples are
    remembered as soon as they are drawn, so a killed run keeps them."""
    texts = [remembered.get(prompt) for prompt in prompts]
    cells = _cells_per_sequence(prompts, limit)
    group = max(1, min(GROUP, CELLS // (K * cells)))

    def tell() -> None:
        report(Progress("negatives", sum(1 for found in texts if len(found) == K), len(prompts)))

    tell()  # the stage has started: long samples can take minutes
    with Engine(model, n_threads=threads, loading=loading) as engine:
        adapters = [(engine.adapter(tam), 1.0)] if tam else []
        # Not unified: each sequence attends over its own cells only (1.4x faster for long samples).
        ctx = Context(engine.model, adapters, n_ctx=cells * K * group, n_threads=threads, n_seq_max=K * group,
                      unified=False)
        try:
            for _ in range(ROUNDS):
                wanted = [i for i, found in enumerate(texts) if len(found) < K]

                def keep(j: int, samples: list, wanted=wanted) -> None:
                    i = wanted[j]
                    for tokens, _ in samples:
                        text = text_of(engine, tokens)
                        text = first_line(text) if one_line else text
                        if text and text not in texts[i] and len(texts[i]) < K:
                            texts[i].append(text)
                    remembered.add([prompts[i]], [texts[i]])
                    tell()

                if wanted:
                    sample_continuations(ctx, [prompts[i] for i in wanted], K, [limit] * len(wanted), SAMPLING, rng,
                                         finished=keep)
        finally:
            ctx.close()
    return texts


def _cells_per_sequence(prompts: list[list[int]], limit: int) -> int:
    """KV cells one sequence needs: the longest prompt and a whole sample, in llama.cpp's 256s."""
    need = max((len(p) for p in prompts), default=0) + limit
    return -(-need // 256) * 256
