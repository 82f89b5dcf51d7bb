"""Many samples and sequence scores from llama.cpp, for mining DPO negatives.

K continuations of one prompt are sampled together: the prompt is evaluated once, copied to K
sequences of one context, and every step evaluates the K next tokens in a single batch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .decoding import Sampling, pick
from .llama import Context, LoraAdapter, Model


def sample_continuations(model: Model, adapters: Sequence[tuple[LoraAdapter, float]], prompt: Sequence[int],
                         k: int, max_tokens: int, sampling: Sampling, rng: np.random.Generator,
                         n_ctx: int = 2048) -> list[list[int]]:
    ctx = Context(model, adapters, n_ctx=n_ctx, n_seq_max=k)
    try:
        ctx.decode(prompt)
        for seq in range(1, k):
            ctx.copy_sequence(0, seq)
        first = ctx.logits().copy()
        everything = np.arange(model.n_vocab)
        outputs: list[list[int]] = [[] for _ in range(k)]
        live = list(range(k))
        rows = {seq: first for seq in live}
        position = len(prompt)
        for _ in range(max_tokens):
            entries = []
            for seq in list(live):
                token = pick(rows[seq].astype(np.float64), everything, sampling, rng)
                if model.is_end(token):
                    live.remove(seq)
                    continue
                outputs[seq].append(token)
                entries.append((token, position, seq, True))
            if not entries:
                break
            ctx.submit(entries)
            rows = {seq: ctx.logits(i).copy() for i, (_, _, seq, _) in enumerate(entries)}
            position += 1
        return outputs
    finally:
        ctx.close()


def sequence_logprob(ctx: Context, prompt: Sequence[int], continuation: Sequence[int]) -> float:
    """Σ_t log p(y_t | prompt, y_<t) under the context's adapters."""
    ctx.decode(ctx.start(list(prompt)))  # reuses the cached shared prefix
    logits = [ctx.logits().copy()]
    if len(continuation) > 1:
        ctx.decode(list(continuation[:-1]), all_logits=True)
        logits += [ctx.logits(i).copy() for i in range(len(continuation) - 1)]
    total = 0.0
    for row, token in zip(logits, continuation):
        row = row.astype(np.float64)
        top = row.max()
        total += float(row[token] - top - np.log(np.exp(row - top).sum()))
    return total
