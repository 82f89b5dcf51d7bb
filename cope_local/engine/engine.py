"""The drafting engine: one loaded model, a context per adapter set, token-by-token streaming.

CoPe needs π_user's logits at every step but π_base's only when |V_head| > 1. The base context
therefore runs behind: chosen tokens queue up and a worker thread evaluates them whenever it is
idle (ctypes releases the GIL, so this overlaps with π_user's own step); the main thread waits
for it only at steps that need π_base, and never when the generation ends first.

Generated tokens are evaluated one per llama_decode in both contexts, as the plain reference
does: llama.cpp's n=1 path can give slightly different logits from the same token inside a
batch (measured with real adapters), and exactness comes first.
"""

from __future__ import annotations

import codecs
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cope_local.engine.decoding import Choice, Sampling, choose_contrast, choose_plain, head, next_choice
from cope_local.engine.llama import CONTEXT_TOKENS, Context, LoraAdapter, Model
from cope_local.engine.loader import Loading
from cope_local.gguf import read_gguf
from cope_local.gguf.lora import validate
from cope_local.progress import Cancel

AdapterSet = tuple[tuple[Path, float], ...]


@dataclass(frozen=True)
class Plan:
    """Which contexts a method reads: `user` always, `base` only for contrastive decoding."""

    user: AdapterSet
    base: AdapterSet | None = None
    alpha: float = 0.3
    tau: float = 0.1


@dataclass(frozen=True)
class Step:
    token: int
    text: str  # the newly completed text (may be "" mid-way through a multi-byte character)
    choice: Choice


@dataclass
class BasePacing:
    """How π_base is evaluated: lazily (only when needed) and/or in a worker thread. The worker
    only pays with a second core: on one (taskset, a one-CPU container) it competes with π_user
    and lazy evaluation in turn is faster (docs/benchmarks.md: 0.57× vs 0.52× greedy π_user)."""

    lazy: bool = True
    concurrent: bool = field(default_factory=lambda: usable_cores() > 1)
    base_evaluations: int = field(default=0, compare=False)


class NgramBlock:
    """Tokens that would complete an n-gram the draft already holds (HF's no_repeat_ngram_size),
    kept per (n-1)-token prefix as tokens arrive, so that each step is one lookup; n = 0: none."""

    def __init__(self, n: int):
        self.n, self.tokens, self.following = n, [], {}

    def add(self, token: int) -> None:
        self.tokens.append(token)
        if self.n > 0 and len(self.tokens) >= self.n:
            self.following.setdefault(tuple(self.tokens[len(self.tokens) - self.n:-1]), []).append(token)

    def banned(self) -> list[int]:
        if self.n <= 0 or len(self.tokens) < self.n - 1:
            return []
        return self.following.get(tuple(self.tokens[len(self.tokens) - self.n + 1:]), [])


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class _Track:
    """A context that follows the generated text, possibly behind schedule (see module doc)."""

    def __init__(self, ctx: Context, prompt: Sequence[int], pool: ThreadPoolExecutor | None):
        self.ctx, self.pool = ctx, pool
        self.prompt = list(prompt)
        self.primed = False  # the first evaluation decodes the prompt (reusing a cached prefix)
        self.pending: list[int] = []
        self.future: Future | None = None
        self.latest: np.ndarray | None = None
        self.evaluations = 0
        self._start()

    def _evaluate(self, tokens: list[int]) -> np.ndarray:
        if not self.primed:
            self.ctx.decode(self.ctx.start(self.prompt))
            self.primed = True
        for token in tokens:
            self.ctx.decode([token])
        return self.ctx.logits().copy()

    def _start(self) -> None:
        if self.pool is None or (self.future is not None and not self.future.done()):
            return
        self._collect()
        if self.pending or not self.primed:
            batch, self.pending = self.pending, []
            self.evaluations += 1
            self.future = self.pool.submit(self._evaluate, batch)

    def _collect(self) -> None:
        if self.future is not None:
            future, self.future = self.future, None
            self.latest = future.result()

    def push(self, token: int) -> None:
        self.pending.append(token)
        self._start()

    def logits(self) -> np.ndarray:
        """Logits after every pushed token; waits for the worker and catches up in one batch."""
        self._collect()
        if self.pending or not self.primed:
            batch, self.pending = self.pending, []
            self.evaluations += 1
            self.latest = self._evaluate(batch)
        return self.latest

    def settle(self) -> None:
        """Wait for background work so the context is safe to reuse (also after a cancel)."""
        try:
            self._collect()
        except Exception:
            self.ctx.clear()


class Engine:
    """Owns the model, its adapters and contexts; `generate` streams one draft at a time."""

    def __init__(self, model_path: Path, n_ctx: int = CONTEXT_TOKENS, n_threads: int = 1, max_contexts: int = 3,
                 loading: Loading | None = None):
        self.model_path = Path(model_path)
        self.header = read_gguf(self.model_path)
        self.model = Model(self.model_path, loading)
        self.n_ctx, self.n_threads, self.max_contexts = n_ctx, n_threads, max_contexts
        self._adapters: dict[Path, LoraAdapter] = {}
        self._contexts: OrderedDict[AdapterSet, Context] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cope-base")
        self._lock = threading.Lock()  # one generation at a time per engine

    # -- resources ----------------------------------------------------------------------------

    def adapter(self, path: Path) -> LoraAdapter:
        path = Path(path).resolve()
        if path not in self._adapters:
            validate(path, self.header)
            self._adapters[path] = LoraAdapter(self.model, path)
        return self._adapters[path]

    def context(self, adapters: AdapterSet) -> Context:
        if adapters in self._contexts:
            self._contexts.move_to_end(adapters)
            return self._contexts[adapters]
        loaded = [(self.adapter(path), scale) for path, scale in adapters]
        if len(self._contexts) >= self.max_contexts:
            _, oldest = self._contexts.popitem(last=False)
            oldest.close()
        ctx = Context(self.model, loaded, n_ctx=self.n_ctx, n_threads=self.n_threads)
        self._contexts[adapters] = ctx
        return ctx

    def close(self) -> None:
        with self._lock:  # after the generation in progress, if any
            self._pool.shutdown(wait=True)
            self._contexts.clear()
            self._adapters.clear()
            self.model.close()  # closes every context and adapter made on it, newest first

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- prompts -------------------------------------------------------------------------------

    def tokenize_prompt(self, prompt: str) -> list[int]:
        return self.model.tokenize(prompt, special=True)

    # -- generation ----------------------------------------------------------------------------

    def generate(
        self,
        prompt_tokens: Sequence[int],
        plan: Plan,
        max_tokens: int = 100,
        sampling: Sampling = Sampling(),
        seed: int | None = None,
        cancel: Cancel | None = None,
        schedule: BasePacing | None = None,
        min_tokens: int = 0,
        no_repeat: int = 0,
    ) -> Iterator[Step]:
        """Yield each chosen token as soon as it is chosen; stops at end-of-text or max_tokens.
        Before `min_tokens` an end-of-text pick is masked out and the step chosen again; with
        `no_repeat` n, a token that would repeat an n-gram of the draft is never chosen."""
        schedule = schedule or BasePacing()
        rng = np.random.default_rng(seed) if sampling.temperature > 0 else None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        if len(prompt_tokens) + max_tokens > self.n_ctx:
            max_tokens = max(self.n_ctx - len(prompt_tokens), 0)
        with self._lock:
            user_ctx = self.context(plan.user)
            base = None
            if plan.base is not None:
                pool = self._pool if schedule.concurrent else None
                base = _Track(self.context(plan.base), prompt_tokens, pool)
            user = _Track(user_ctx, prompt_tokens, None)
            generated: set[int] = set()
            block = NgramBlock(no_repeat)
            try:
                for count in range(max_tokens):
                    if cancel is not None and cancel.is_set():
                        return
                    if base is None:
                        pick = lambda logits: choose_plain(logits, generated, sampling, rng)  # noqa: E731
                    else:
                        pick = lambda logits: self._contrast(logits, base, plan, generated, sampling, rng, schedule)  # noqa: E731
                    choice = next_choice(user.logits(), pick, block.banned(), count >= min_tokens, self.model.is_end)
                    if self.model.is_end(choice.token):
                        return
                    generated.add(choice.token)
                    block.add(choice.token)
                    yield Step(choice.token, decoder.decode(self.model.piece(choice.token)), choice)
                    user.push(choice.token)
                    if base is not None:
                        base.push(choice.token)
            finally:
                if base is not None:
                    base.settle()
                    schedule.base_evaluations += base.evaluations

    def _contrast(self, user_logits, base: _Track, plan: Plan, generated, sampling, rng, schedule) -> Choice:
        candidates = head(user_logits, plan.tau)
        if len(candidates) == 1 and schedule.lazy:
            token = int(candidates[0])
            return Choice(token, 1, token, None)
        return choose_contrast(user_logits, base.logits(), candidates, plan.alpha, generated, sampling, rng)
