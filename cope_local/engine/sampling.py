"""K samples of each of several prompts, and log-probabilities of continuations, from llama.cpp,
for mining DPO negatives.

Several prompts share one context: prompt j is decoded into sequence j*K and copied to the K-1
sequences after it, and every step evaluates the next token of every live sequence of every
prompt in ONE batch. On a CPU a small model's step costs about the same for 3 rows as for 24
(the weights are read once either way), so a group of prompts costs little more than one.
The context needs n_seq_max >= K * len(prompts) and room for every sequence's tokens: with
kv_unified, all of them in the shared cells; without, each in its own n_ctx / n_seq_max cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cope_local.engine.decoding import Sampling, log_sum_exp, pick
from cope_local.engine.llama import Context


def _prime(ctx: Context, prompts: Sequence[Sequence[int]], k: int) -> list[np.ndarray]:
    """Decode prompt j into sequence j*k, copy it to the k-1 sequences after it; the logits after each."""
    ctx.clear()
    firsts = []
    for j, prompt in enumerate(prompts):
        for start in range(0, len(prompt), ctx.n_batch):
            chunk = prompt[start:start + ctx.n_batch]
            ctx.submit([(token, start + i, j * k, start + i == len(prompt) - 1) for i, token in enumerate(chunk)])
        firsts.append(ctx.logits().copy())
        for seq in range(j * k + 1, j * k + k):
            ctx.copy_sequence(j * k, seq)
    return firsts


def _logprob(row: np.ndarray, token: int) -> float:
    return float(row[token]) - log_sum_exp(row)


def sample_continuations(ctx: Context, prompts: Sequence[Sequence[int]], k: int, limits: Sequence[int],
                         sampling: Sampling, rng: np.random.Generator) -> list[list[tuple[list[int], float]]]:
    """For each prompt, K samples of at most its limit in tokens, each with its log-probability."""
    firsts = _prime(ctx, prompts, k)
    rows = {seq: firsts[seq // k] for seq in range(k * len(prompts))}
    everything = np.arange(ctx.model.n_vocab)
    outputs: list[list[int]] = [[] for _ in rows]
    logprobs = [0.0] * len(rows)
    for step in range(max(limits, default=0)):
        entries = []
        for seq, row in rows.items():
            if step >= limits[seq // k]:
                continue
            token = pick(row.astype(np.float64), everything, sampling, rng)
            if ctx.model.is_end(token):
                continue
            outputs[seq].append(token)
            logprobs[seq] += _logprob(row, token)
            if step + 1 < limits[seq // k]:
                entries.append((token, len(prompts[seq // k]) + step, seq, True))
        if not entries:
            break
        ctx.submit(entries)
        rows = {seq: ctx.logits(i).copy() for i, (_, _, seq, _) in enumerate(entries)}
    ctx.clear()  # the cache holds many sequences: start() must rebuild it
    samples = list(zip(outputs, logprobs))
    return [samples[j * k:(j + 1) * k] for j in range(len(prompts))]


def score_continuations(ctx: Context, prompts: Sequence[Sequence[int]],
                        continuations: Sequence[Sequence[Sequence[int]]]) -> list[list[float]]:
    """Σ_t log p(y_t | prompt_j, y_<t) of each continuation of each prompt."""
    width = max((len(c) for c in continuations), default=1) or 1
    firsts = _prime(ctx, prompts, width)
    scores = [[_logprob(firsts[j], tokens[0]) if tokens else 0.0 for tokens in conts]
              for j, conts in enumerate(continuations)]
    entries, targets = [], []
    for j, conts in enumerate(continuations):
        for i, tokens in enumerate(conts):
            for t, token in enumerate(tokens[:-1]):
                entries.append((token, len(prompts[j]) + t, j * width + i, True))
                targets.append((j, i, tokens[t + 1]))
    for start in range(0, len(entries), ctx.n_batch):
        ctx.submit(entries[start:start + ctx.n_batch])
        for index, (j, i, following) in enumerate(targets[start:start + ctx.n_batch]):
            scores[j][i] += _logprob(ctx.logits(index), following)
    ctx.clear()
    return scores
