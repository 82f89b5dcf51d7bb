"""History items -> (prompt, response) token ids exactly as drafting sees them; batching and
scoring of those ids."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from cope_local.drafting.prompts import fit_prompt, prompt_budget, render_prompt
from cope_local.drafting.settings import FAMILY_DEFAULTS
from cope_local.drafting.tasks import Task

IGNORE = -100


@dataclass(frozen=True)
class Example:
    prompt_ids: list[int]
    response_ids: list[int]  # the output followed by the end-of-turn token


@dataclass(frozen=True)
class Branches:
    """One prompt and several responses to it (DPO's chosen and rejected, or K samples)."""

    prompt_ids: list[int]
    responses: list[list[int]]


class Encoder:
    """Tokenizes exactly as drafting does: the prompt fitted to the drafting context by
    prompts.fit_prompt (inside the input fields, never the instruction; the template supplies
    BOS), then the response as drafting would produce it, up to the task family's limit."""

    def __init__(self, tokenizer, chat_template: str | None):
        self.tokenizer = tokenizer
        self.template = chat_template
        self.end = tokenizer.eos_token or ""
        self.end_ids = self._tokens(self.end) if self.end else []

    def _tokens(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def prompt_ids(self, task: Task, inputs: dict[str, str]) -> list[int]:
        bos = self.tokenizer.bos_token or ""
        return fit_prompt(self._tokens, lambda fitted: render_prompt(task, fitted, self.template, bos, self.end),
                          task, inputs, prompt_budget(limit(task)), [])

    def response_ids(self, task: Task, output: str) -> list[int]:
        """The output and the end token when both fit the drafting limit; a longer output is kept
        to the limit WITHOUT the end token (a draft that long is cut there too: no false stop)."""
        ids = self._tokens(output.strip())
        return ids + self.end_ids if len(ids) + len(self.end_ids) <= limit(task) else ids[: limit(task)]

    def example(self, task: Task, inputs: dict[str, str], output: str) -> Example:
        return Example(self.prompt_ids(task, inputs), self.response_ids(task, output))

    def branches(self, task: Task, inputs: dict[str, str], outputs: list[str]) -> Branches:
        """The prompt once and every output, whole, as a response to it."""
        return Branches(self.prompt_ids(task, inputs), [self.response_ids(task, o) for o in outputs])


def limit(task: Task) -> int:
    """How many tokens a draft of this task may have (the family's drafting limit)."""
    return FAMILY_DEFAULTS[task.family].max_tokens


def one_line(task: Task) -> bool:
    """Whether a draft of this task ends at its first line break."""
    return FAMILY_DEFAULTS[task.family].one_line


def by_tokens(items: list, budget: int, size=None) -> list[list]:
    """Consecutive items in groups of at most `budget` padded tokens (rows × the longest row),
    one item at least: the unit of one forward pass, so that peak memory stays bounded."""
    size = size or length
    groups, group, longest = [], [], 0
    for item in items:
        tokens = size(item)
        if group and (len(group) + 1) * max(longest, tokens) > budget:
            groups.append(group)
            group, longest = [], 0
        group.append(item)
        longest = max(longest, tokens)
    return groups + [group] if group else groups


def batches(items: list, batch_size: int, seed: int, epoch: int) -> list[list]:
    """Shuffled batches of similar length (as transformers' group_by_length): each shuffled window
    of 50 batches is sorted by length before it is cut into batches, then the batches are
    shuffled. Padding to the longest in a batch then wastes little compute (measured on the
    HuffPost data: 11 % of the tokens were padding with plain random batches of 4, 0.7 % grouped)."""
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(len(items)))
    rng.shuffle(order)
    window = batch_size * 50
    grouped = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: length(items[i]))
        grouped += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(grouped)
    return [[items[i] for i in batch] for batch in grouped]


def length(item) -> int:
    """Tokens of an Example or a Branches row."""
    if isinstance(item, Branches):
        return len(item.prompt_ids) + sum(map(len, item.responses))
    if isinstance(item, Example):
        return len(item.prompt_ids) + len(item.response_ids)
    return 0  # anything else keeps its shuffled order


def collate(examples: list[Example], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """LEFT-padded ids, so every response ends at the last position; positions start at 0 at each
    row's first real token (as llama.cpp counts them); labels score the response only."""
    length = max(len(e.prompt_ids) + len(e.response_ids) for e in examples)
    ids = torch.full((len(examples), length), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), length), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), length), dtype=torch.long)
    positions = torch.zeros((len(examples), length), dtype=torch.long)
    for row, example in enumerate(examples):
        sequence = example.prompt_ids + example.response_ids
        start = length - len(sequence)
        ids[row, start:] = torch.tensor(sequence)
        mask[row, start:] = 1
        positions[row, start:] = torch.arange(len(sequence))
        labels[row, length - len(example.response_ids):] = torch.tensor(example.response_ids)
    tensors = {"input_ids": ids, "attention_mask": mask, "position_ids": positions, "labels": labels}
    return {name: tensor.to(device) for name, tensor in tensors.items()}


def _response_token_logprobs(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """log p of each response token and which entries are real. The vocabulary projection and its
    softmax run only over the final positions that predict a response token: with left padding
    that is a short tail, instead of every prompt position too (most of the work otherwise)."""
    labels = batch["labels"]
    length = labels.shape[1]
    first = int((labels != IGNORE).any(0).nonzero()[0])
    start = max(first - 1, 0)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   position_ids=batch["position_ids"], logits_to_keep=length - start).logits[:, :-1].float()
    targets = labels[:, start + 1:]
    return _target_logprobs(logits, targets.clamp(min=0)), targets != IGNORE


def _target_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[target] without a second vocabulary-sized tensor (peak memory)."""
    return torch.gather(logits, -1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, -1)


def response_logprobs(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Σ log p(response tokens) per row."""
    picked, real = _response_token_logprobs(model, batch)
    return (picked * real).sum(-1)


def response_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over the batch's response tokens (what transformers' loss computes)."""
    picked, real = _response_token_logprobs(model, batch)
    return -(picked * real).sum() / real.sum()


def collate_branches(rows: list[Branches], device: torch.device, pad_id: int) -> dict[str, torch.Tensor]:
    """Each row as ONE sequence, prompt then every response, left-padded. The attention mask lets a
    response see the prompt and itself but no other response, and positions restart after the
    prompt, so each response is scored exactly as if it followed the prompt alone, while the
    shared prompt is computed once instead of once per response."""
    n = max(len(r.responses) for r in rows)
    length = max(len(r.prompt_ids) + sum(map(len, r.responses)) for r in rows)
    width = max((len(resp) for r in rows for resp in r.responses), default=1) or 1
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), length), dtype=torch.long)
    segment = torch.full((len(rows), length), -1, dtype=torch.long)  # -1 pad, 0 prompt, i+1 response i
    sources = torch.zeros((len(rows), n, width), dtype=torch.long)
    targets = torch.full((len(rows), n, width), IGNORE, dtype=torch.long)
    for b, row in enumerate(rows):
        at = length - len(row.prompt_ids) - sum(map(len, row.responses))
        prompt_end = at + len(row.prompt_ids) - 1
        ids[b, at:prompt_end + 1] = torch.tensor(row.prompt_ids)
        positions[b, at:prompt_end + 1] = torch.arange(len(row.prompt_ids))
        segment[b, at:prompt_end + 1] = 0
        at = prompt_end + 1
        for i, response in enumerate(row.responses):
            span = slice(at, at + len(response))
            ids[b, span] = torch.tensor(response, dtype=torch.long)
            positions[b, span] = torch.arange(len(response)) + len(row.prompt_ids)
            segment[b, span] = i + 1
            sources[b, i, :len(response)] = torch.tensor([prompt_end] + list(range(at, at + len(response) - 1)))
            targets[b, i, :len(response)] = torch.tensor(response, dtype=torch.long)
            at += len(response)
    q, k = segment.unsqueeze(2), segment.unsqueeze(1)
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    allowed = causal & (q >= 0) & (k >= 0) & ((k == 0) | (k == q))
    allowed |= torch.eye(length, dtype=torch.bool) & (q < 0)  # padding sees itself: no empty softmax rows
    tensors = {"input_ids": ids, "attention_mask": allowed.unsqueeze(1), "position_ids": positions,
               "sources": sources, "targets": targets}
    return {name: tensor.to(device) for name, tensor in tensors.items()}


def branch_logprobs(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Σ log p(response tokens | prompt) for each response of each row: [rows, responses].
    Peak memory is the one logits tensor: each picked logit is read by index and each position's
    normaliser is computed once, POSITIONS at a time (no [rows, responses, width, vocab] copy,
    which on long-form rows was three times the logits)."""
    length = batch["input_ids"].shape[1]
    real = batch["targets"] != IGNORE
    first = int(batch["sources"][real].min()) if real.any() else length - 1
    masks = _per_layer_type(model, batch["attention_mask"], batch["position_ids"])
    logits = model(input_ids=batch["input_ids"], attention_mask=masks,
                   position_ids=batch["position_ids"], logits_to_keep=length - first).logits
    normaliser = torch.cat([torch.logsumexp(logits[:, at:at + POSITIONS].float(), -1)
                            for at in range(0, logits.shape[1], POSITIONS)], 1)  # [rows, kept positions]
    rows = torch.arange(logits.shape[0], device=logits.device).view(-1, 1, 1)
    where = (batch["sources"] - first).clamp(min=0)
    picked = logits[rows, where, batch["targets"].clamp(min=0)].float() - normaliser[rows, where]
    return (picked * real).sum(-1)


POSITIONS = 128  # positions per log-sum-exp: its temporaries stay ~25 MB for a 49k vocabulary


def _per_layer_type(model, allowed: torch.Tensor, positions: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
    """A prepared 4-D mask is used as-is by every layer, so a model with sliding-window layers
    (Gemma 3: 512 tokens) gets one mask per layer type: there a query sees keys fewer than
    `sliding_window` POSITIONS back (as llama.cpp's SWA cache does). Positions, not indices:
    in a packed row each response restarts right after the prompt."""
    config = model.config
    window = getattr(config, "sliding_window", None)
    if not window or "sliding_attention" not in (getattr(config, "layer_types", None) or ()):
        return allowed
    near = (positions.unsqueeze(2) - positions.unsqueeze(1)) < window  # [rows, query, key]
    return {"full_attention": allowed, "sliding_attention": allowed & near.unsqueeze(1)}
