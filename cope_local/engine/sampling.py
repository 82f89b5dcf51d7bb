"""K samples of one prompt, and their log-probabilities, from llama.cpp, for mining DPO negatives.

The prompt is evaluated once (reusing the cached shared prefix), copied to K sequences of one
context, and every step evaluates the K next tokens in a single batch. Scoring K continuations
under another model is one batch too.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .decoding import Sampling, log_sum_exp, pick
from .llama import Context


def _prime(ctx: Context, prompt: Sequence[int], k: int) -> np.ndarray:
    ctx.decode(ctx.start(list(prompt)))
    for seq in range(1, k):
        ctx.copy_sequence(0, seq)
    return ctx.logits().copy()


def sample_continuations(ctx: Context, prompt: Sequence[int], k: int, max_tokens: int, sampling: Sampling,
                         rng: np.random.Generator) -> list[tuple[list[int], float]]:
    """K samples (ctx needs n_seq_max >= k), each with its log-probability under ctx's model."""
    first = _prime(ctx, prompt, k)
    rows = {seq: first for seq in range(k)}
    everything = np.arange(ctx.model.n_vocab)
    outputs: list[list[int]] = [[] for _ in range(k)]
    logprobs = [0.0] * k
    position = len(prompt)
    for _ in range(max_tokens):
        entries = []
        for seq, row in rows.items():
            token = pick(row.astype(np.float64), everything, sampling, rng)
            if ctx.model.is_end(token):
                continue
            outputs[seq].append(token)
            logprobs[seq] += float(row[token]) - log_sum_exp(row)
            entries.append((token, position, seq, True))
        if not entries:
            break
        ctx.submit(entries)
        rows = {seq: ctx.logits(i).copy() for i, (_, _, seq, _) in enumerate(entries)}
        position += 1
    ctx.tokens = []  # the cache now holds several sequences: the next start() rebuilds it
    return list(zip(outputs, logprobs))


def score_continuations(ctx: Context, prompt: Sequence[int], continuations: Sequence[Sequence[int]]) -> list[float]:
    """Σ_t log p(y_t | prompt, y_<t) of each continuation (ctx needs n_seq_max >= their number)."""
    first = _prime(ctx, prompt, len(continuations))
    entries = [(token, len(prompt) + t, seq, True)
               for seq, tokens in enumerate(continuations) for t, token in enumerate(tokens[:-1])]
    if entries:
        ctx.submit(entries)
    scores, index = [], 0
    for tokens in continuations:
        total = 0.0
        for t, token in enumerate(tokens):
            row = first if t == 0 else ctx.logits(index + t - 1)
            total += float(row[token]) - log_sum_exp(row)
        index += max(len(tokens) - 1, 0)
        scores.append(total)
    ctx.tokens = []
    return scores
