"""History items -> (prompt, response) token ids, rendered exactly as the engine renders prompts."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from cope_local.prompts import render_prompt
from cope_local.tasks import Task

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
    """Tokenizes like llama.cpp at draft time: prompt alone (template supplies BOS), then the response."""

    def __init__(self, tokenizer, chat_template: str | None, max_length: int = 512):
        self.tokenizer = tokenizer
        self.template = chat_template
        self.max_length = max_length
        self.end = tokenizer.eos_token or ""

    def prompt_ids(self, task: Task, inputs: dict[str, str]) -> list[int]:
        text = render_prompt(task, inputs, self.template, self.tokenizer.bos_token or "", self.end)
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def example(self, task: Task, inputs: dict[str, str], output: str) -> Example:
        prompt = self.prompt_ids(task, inputs)
        response = self.tokenizer(output.strip() + self.end, add_special_tokens=False).input_ids
        room = self.max_length - len(response)
        if room < 16:  # a very long output: keep its start, and enough prompt to condition on
            response = response[: self.max_length // 2]
            room = self.max_length - len(response)
        return Example(prompt[-room:] if len(prompt) > room else prompt, response)

    def branches(self, task: Task, inputs: dict[str, str], outputs: list[str]) -> Branches:
        """The prompt once and every output as a response to it, in max_length tokens together."""
        prompt = self.prompt_ids(task, inputs)
        responses = [self.tokenizer(o.strip() + self.end, add_special_tokens=False).input_ids for o in outputs]
        share = self.max_length // (len(responses) + 1)
        responses = [r if len(r) <= share else r[:share] for r in responses]
        room = self.max_length - sum(len(r) for r in responses)
        return Branches(prompt[-room:] if len(prompt) > room else prompt, responses)


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
        chunk = sorted(order[start:start + window], key=lambda i: _length(items[i]))
        grouped += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(grouped)
    return [[items[i] for i in batch] for batch in grouped]


def _length(item) -> int:
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
    picked = torch.gather(torch.log_softmax(logits, -1), 2, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return picked, targets != IGNORE


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
    """Σ log p(response tokens | prompt) for each response of each row: [rows, responses]."""
    length = batch["input_ids"].shape[1]
    real = batch["targets"] != IGNORE
    first = int(batch["sources"][real].min()) if real.any() else length - 1
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   position_ids=batch["position_ids"], logits_to_keep=length - first).logits
    rows = torch.arange(logits.shape[0], device=logits.device).view(-1, 1, 1)
    picked_logits = logits[rows, (batch["sources"] - first).clamp(min=0)].float()  # [rows, responses, width, vocab]
    picked = torch.gather(torch.log_softmax(picked_logits, -1), 3, batch["targets"].clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * real).sum(-1)
