"""One draft, start to finish: `prepare` turns a method, the adapters at hand and the task's inputs
into decoding settings, a plan of contexts and a fitted prompt; `Draft.stream` generates it under
the stop rules. The CLI and the app (through jobs.draft, which finds a person's adapters in the
store), `cope eval` and tuning all draft through here."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field

from cope_local.drafting import methods
from cope_local.drafting.methods import METHODS, Adapters
from cope_local.drafting.prompts import prompt_tokens
from cope_local.drafting.settings import DecodingSettings, for_family, typical_length
from cope_local.drafting.tasks import Task
from cope_local.engine.engine import BasePacing, Engine, Plan, Step
from cope_local.errors import CopeError
from cope_local.progress import Cancel


@dataclass
class Draft:
    """One prepared draft; iterate `stream()` for tokens (or call `complete()`), then read text."""

    engine: Engine
    task: Task
    inputs: dict[str, str]
    method: str  # the method really used (a missing adapter degrades it; see notes)
    settings: DecodingSettings
    plan: Plan
    prompt_tokens: list[int]
    notes: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    elapsed: float = 0.0
    schedule: BasePacing = field(default_factory=BasePacing)
    proposed_by: int | None = None  # the store's id of the user adapter version that drafts it (jobs.draft)

    def stream(self, cancel: Cancel | None = None) -> Iterator[Step]:
        started = time.perf_counter()
        try:
            for step in generate(self.engine, self.prompt_tokens, self.plan, self.settings, cancel=cancel,
                                 schedule=self.schedule):
                self.steps.append(step)
                yield step
        finally:
            self.elapsed = time.perf_counter() - started
        if cancel is not None:
            cancel.check("draft cancelled; nothing was saved")

    def complete(self) -> str:
        """Generate the whole draft; its text."""
        for _ in self.stream():
            pass
        return self.text

    @property
    def text(self) -> str:
        return text_of(self.engine, [s.token for s in self.steps])

    @property
    def tok_s(self) -> float:
        return len(self.steps) / self.elapsed if self.elapsed else 0.0

    def tokens(self) -> list[dict]:
        model = self.engine.model
        return [
            {"id": s.token, "text": model.piece(s.token).decode("utf-8", errors="replace"),
             "head_size": s.choice.head_size, "user_top": s.choice.user_top, "reward": s.choice.reward,
             "changed": s.choice.contrast_changed}
            for s in self.steps
        ]

    def as_json(self) -> dict:
        return {"text": self.text, "tokens": self.tokens(), "method": self.method, "params": self.settings.as_dict(),
                "tok_s": round(self.tok_s, 2), "notes": self.notes}


def prepare(engine: Engine, task: Task, inputs: dict[str, str], method_name: str, adapters: Adapters,
            tuned: dict | None = None, history: Sequence[str] = (), preamble: str = "",
            allowed: Sequence[str] = tuple(METHODS), notes: list[str] | None = None, **overrides) -> Draft:
    """A draft of `inputs` by `method_name` with `adapters` (what tuning chose for them: `tuned`).
    `history`: the person's newest outputs first (their typical length sets a long-form draft's
    minimum); `preamble`: text before the instruction (RAG/PAG); `overrides`: decoding settings."""
    chosen = methods.method(method_name, allowed)
    check_inputs(task, inputs)
    notes = [] if notes is None else notes
    settings = for_family(task.family, tuned, typical_length(engine, history), **overrides)
    used, plan = methods.plan(chosen, adapters, settings.alpha, settings.tau, notes)
    prompt = prompt_tokens(engine, task, inputs, settings.max_tokens, notes, preamble)
    return Draft(engine, task, dict(inputs), used.name, settings, plan, prompt, notes)


def check_inputs(task: Task, inputs: dict[str, str]) -> None:
    unknown = set(inputs) - set(task.inputs)
    if unknown:
        raise CopeError(f"task '{task.name}' has no field {', '.join(sorted(unknown))}", hint=f"its inputs: {', '.join(task.inputs)}")


def generate(engine: Engine, prompt: Sequence[int], plan: Plan, settings: DecodingSettings, **controls) -> Iterator[Step]:
    """Generate under `settings` (sampling, penalty and stop rules); `controls`: cancel, schedule."""
    stream = engine.generate(prompt, plan, settings.max_tokens, settings.sampling, seed=settings.seed,
                             min_tokens=settings.min_tokens, no_repeat=settings.no_repeat, **controls)
    return until_line_break(stream) if settings.one_line else stream


def until_line_break(stream: Iterator[Step]) -> Iterator[Step]:
    """The steps up to the first line break after some text. A token that holds the break keeps
    its text before it ("?\n" from a Llama-3 tokenizer); generation stops there."""
    written = ""
    with closing(stream):  # frees the engine at once, not when the generator is collected
        for step in stream:
            written += step.text
            if "\n" in written.lstrip():
                if step.text.split("\n", 1)[0].strip():
                    yield step
                return
            yield step


def first_line(text: str) -> str:
    """A sampled text as a one-line task's draft would end (until_line_break, on text)."""
    return text.strip().split("\n", 1)[0].strip()


def text_of(engine: Engine, tokens: Sequence[int]) -> str:
    """Generated tokens as the text a person reads."""
    return b"".join(engine.model.piece(t) for t in tokens).decode("utf-8", errors="replace").strip()
