"""K samples of each of several prompts, and log-probabilities of continuations, from llama.cpp,
for mining DPO negatives.

Several prompts share one context: a prompt is decoded into one sequence and copied to K-1 more,
and every step evaluates the next token of every live sequence in ONE batch. A step's cost grows
far slower than its rows (SmolLM2-135M F32, one core of an AMX Xeon: 61 ms for 3 rows, 226 ms
for 24), so keeping many sequences live at every step is what makes sampling fast.
Sampling needs n_seq_max >= K (each K more is one more lane), scoring K × the prompts; and room
for every sequence's tokens: with kv_unified, all of them in the shared cells; without, each in
its own n_ctx / n_seq_max cells.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from cope_local.engine.decoding import Sampling, log_sum_exp, pick
from cope_local.engine.llama import Context


def _prime(ctx: Context, prompts: Sequence[Sequence[int]], k: int) -> list[np.ndarray]:
    """Decode prompt j into sequence j*k, copy it to the k-1 sequences after it; the logits after each."""
    ctx.clear()
    firsts = []
    for j, prompt in enumerate(prompts):
        firsts.append(_decode_prompt(ctx, prompt, j * k))
        for seq in range(j * k + 1, j * k + k):
            ctx.copy_sequence(j * k, seq)
    return firsts


def _logprob(row: np.ndarray, token: int) -> float:
    return float(row[token]) - log_sum_exp(row)


def sample_continuations(ctx: Context, prompts: Sequence[Sequence[int]], k: int, limits: Sequence[int],
                         sampling: Sampling, rng: np.random.Generator,
                         finished: Callable[[int, list], None] | None = None) -> list[list[tuple[list[int], float]]]:
    """For each prompt, K samples of at most its limit in tokens, each with its log-probability.

    Every sequence of the context is a slot that draws one sample at a time and takes the next
    sample as soon as its own has ended, so every step evaluates as many live samples as the
    context holds: a long sample holds back no other (sample lengths are heavy-tailed: most end
    early, a few run to the limit). A prompt is decoded once, into the first slot that samples it;
    its other samples start from a copy of that slot's cells, cut back to the prompt.
    `finished(j, samples)` hears of prompt j as soon as its K samples have ended."""
    everything = np.arange(ctx.model.n_vocab)
    jobs = iter([(j, copy) for j in range(len(prompts)) for copy in range(k)])
    job_of: dict[int, int] = {}  # slot -> the prompt it samples (or sampled last)
    rows: dict[int, np.ndarray] = {}  # slot with a live sample -> the logits its next token is drawn from
    drawn: dict[int, list] = {j: [] for j in range(len(prompts))}
    ends: dict[int, np.ndarray] = {}  # prompt -> the logits after it (kept until its K samples started)
    holder: dict[int, int] = {}  # prompt -> a slot whose cells begin with it
    tokens: dict[int, list[int]] = {}
    logprobs: dict[int, float] = {}
    ctx.clear()

    def start(slot: int) -> None:
        job = next(jobs, None)
        if job is None:
            return
        j, copy = job
        previous = job_of.get(slot)
        if previous is not None and holder.get(previous) == slot and previous != j:
            del holder[previous]
        source = holder.get(j)
        if source is None:
            ctx.clear_sequence(slot)
            ends[j] = _decode_prompt(ctx, prompts[j], slot)
        else:
            if source != slot:
                ctx.copy_sequence(source, slot)  # all of it (llama.cpp copies whole streams) ...
            ctx.trim_sequence(slot, len(prompts[j]))  # ... then back to the prompt
        holder[j], job_of[slot] = slot, j
        rows[slot], tokens[slot], logprobs[slot] = ends[j], [], 0.0
        if copy == k - 1:
            del ends[j]

    def end(slot: int) -> None:
        j = job_of[slot]
        drawn[j].append((tokens.pop(slot), logprobs.pop(slot)))
        if len(drawn[j]) == k and finished is not None:
            finished(j, drawn[j])
        start(slot)

    for slot in range(ctx.n_seq_max):
        start(slot)
    while rows:
        entries, ended = [], []
        for slot in sorted(rows):
            j, row = job_of[slot], rows[slot]
            token = pick(row.astype(np.float64), everything, sampling, rng)
            if ctx.model.is_end(token):
                ended.append(slot)
                continue
            tokens[slot].append(token)
            logprobs[slot] += _logprob(row, token)
            if len(tokens[slot]) < limits[j]:
                entries.append((token, len(prompts[j]) + len(tokens[slot]) - 1, slot, True))
            else:
                ended.append(slot)
        for slot in ended:
            del rows[slot]
        if entries:
            ctx.submit(entries)
            rows.update({slot: ctx.logits(i).copy() for i, (_, _, slot, _) in enumerate(entries)})
        for slot in ended:
            end(slot)
    ctx.clear()  # the cache holds many sequences: start() must rebuild it
    return [drawn[j] for j in range(len(prompts))]


def _decode_prompt(ctx: Context, prompt: Sequence[int], seq: int) -> np.ndarray:
    """Decode `prompt` into sequence `seq` (in chunks of n_batch); the logits after it."""
    for start in range(0, len(prompt), ctx.n_batch):
        chunk = prompt[start:start + ctx.n_batch]
        ctx.submit([(token, start + i, seq, start + i == len(prompt) - 1) for i, token in enumerate(chunk)])
    return ctx.logits().copy()


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


def continuation_logits(ctx: Context, prompt: Sequence[int], continuation: Sequence[int]) -> np.ndarray:
    """Teacher-forced: the logits each token of `continuation` is chosen from after `prompt` and
    the tokens before it (row t for token t), evaluated in batches."""
    ctx.clear()
    rows = [_decode_prompt(ctx, prompt, 0)]
    body = list(continuation[:-1])
    for start in range(0, len(body), ctx.n_batch):
        chunk = body[start:start + ctx.n_batch]
        ctx.submit([(token, len(prompt) + start + i, 0, True) for i, token in enumerate(chunk)])
        rows += [ctx.logits(i).copy() for i in range(len(chunk))]
    ctx.clear()
    return np.stack(rows)
