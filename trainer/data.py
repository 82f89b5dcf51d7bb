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


def batches(items: list, batch_size: int, seed: int, epoch: int) -> list[list]:
    order = list(range(len(items)))
    random.Random(seed * 1000 + epoch).shuffle(order)
    return [[items[i] for i in order[start:start + batch_size]] for start in range(0, len(order), batch_size)]


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask, and labels that score the response only."""
    length = max(len(e.prompt_ids) + len(e.response_ids) for e in examples)
    ids = torch.full((len(examples), length), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), length), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), length), dtype=torch.long)
    for row, example in enumerate(examples):
        sequence = example.prompt_ids + example.response_ids
        ids[row, : len(sequence)] = torch.tensor(sequence)
        mask[row, : len(sequence)] = 1
        labels[row, len(example.prompt_ids): len(sequence)] = torch.tensor(example.response_ids)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def response_logprobs(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Σ log p(response tokens) per row."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    mask = labels != IGNORE
    picked = torch.gather(torch.log_softmax(logits, -1), 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1)
