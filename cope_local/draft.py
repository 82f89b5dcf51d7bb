"""Drafting for a person and a task: find their adapters, apply the drafting policy
(methods.py), stream, remember the draft."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from . import adapter_registry, methods, models
from .adapter_registry import AdapterVersion
from .engine.engine import BasePacing, Engine, Plan, Step
from .engine.loader import Loading
from .errors import CopeError
from .methods import DRAFT_METHODS
from .models import ModelInfo, resolve
from .progress import Cancelled
from .store import Store, utc_now
from .tasks import Task, get_task

DEFAULT_N_CTX = 2048

_engines: dict[tuple, Engine] = {}
_engines_lock = threading.Lock()


def engine_for(model: ModelInfo, loading: Loading, n_ctx: int = DEFAULT_N_CTX, n_threads: int | None = None) -> Engine:
    """The loaded model is cached per process: the TUI drafts many times on one load."""
    n_threads = n_threads or int(os.environ.get("COPE_THREADS", "1"))
    key = (str(model.path), loading.mode, n_ctx, n_threads)
    with _engines_lock:
        if key not in _engines:
            _engines[key] = Engine(model.path, n_ctx=n_ctx, n_threads=n_threads, loading=loading)
        return _engines[key]


def close_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.close()
        _engines.clear()


def usable_adapter(store: Store, task: str, kind: str, profile_id: int | None, model: ModelInfo,
                   notes: list[str]) -> AdapterVersion | None:
    """The active adapter version, if its file exists and it was trained on this very base model."""
    chosen = adapter_registry.active(store, task, kind, profile_id)
    if chosen is None:
        return None
    label = "task adapter (TAM)" if kind == "tam" else "your adapter"
    if chosen.base_fingerprint != model.fingerprint:
        notes.append(f"the active {label} v{chosen.version} was trained for another base model; not used (retrain: cope train)")
        return None
    if not chosen.gguf_path.exists():
        notes.append(f"the active {label} v{chosen.version} is missing at {chosen.gguf_path}; not used (retrain: cope train)")
        return None
    return chosen


@dataclass
class Draft:
    """One prepared draft; iterate `stream()` for tokens, then read text / tokens / tok_s."""

    engine: Engine
    profile_id: int
    task: Task
    inputs: dict[str, str]
    method: str
    params: dict
    plan: Plan
    prompt_tokens: list[int]
    notes: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    elapsed: float = 0.0
    schedule: BasePacing = field(default_factory=BasePacing)

    def stream(self, cancel: threading.Event | None = None) -> Iterator[Step]:
        started = time.perf_counter()
        try:
            for step in methods.steps(self.engine, self.prompt_tokens, self.plan, self.params, cancel=cancel,
                                      schedule=self.schedule):
                self.steps.append(step)
                yield step
        finally:
            self.elapsed = time.perf_counter() - started
        if cancel is not None and cancel.is_set():
            raise Cancelled("draft cancelled; nothing was saved")

    @property
    def text(self) -> str:
        return methods.text_of(self.engine, [s.token for s in self.steps])

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
        return {"text": self.text, "tokens": self.tokens(), "method": self.method, "params": self.params,
                "tok_s": round(self.tok_s, 2), "notes": self.notes}


def prepare(store: Store, profile: str, task_name: str, inputs: dict[str, str], method_name: str = "cope",
            model_name: str | None = None, **overrides) -> Draft:
    chosen = methods.method(method_name, DRAFT_METHODS)
    task = get_task(task_name)
    unknown = set(inputs) - set(task.inputs)
    if unknown:
        raise CopeError(f"task '{task.name}' has no field {', '.join(sorted(unknown))}", hint=f"its inputs: {', '.join(task.inputs)}")
    profile_id = store.profile_id(profile)
    model = resolve(store, model_name)
    notes: list[str] = []
    adapters, tuned = person_adapters(store, task.name, profile_id, model, notes)
    threads = store.setting("threads")
    engine = engine_for(model, models.loading(store, model), n_threads=int(threads) if threads else None)
    history = [w.output for w in store.writings(profile=profile, task=task.name, limit=methods.TYPICAL_ITEMS)]
    params = methods.params(task.family, tuned, methods.typical_length(engine, history), **overrides)
    used, plan = methods.plan(chosen, adapters, params["alpha"], params["tau"], notes)
    prompt = methods.prompt_tokens(engine, task, inputs, params["max_tokens"], notes)
    return Draft(engine, profile_id, task, dict(inputs), used.name, params, plan, prompt, notes)


def person_adapters(store: Store, task: str, profile_id: int, model: ModelInfo,
                    notes: list[str]) -> tuple[methods.Adapters, dict | None]:
    """The task adapter and the person's adapters (after SFT, and final) usable with `model`, and
    what tuning chose for them (None where untuned)."""
    tam = usable_adapter(store, task, "tam", None, model, notes)
    user = usable_adapter(store, task, "user", profile_id, model, notes)
    if user is None:
        return methods.Adapters(tam.gguf_path if tam else None), None
    sft = user.gguf_path.parent / "sft.gguf"
    return (methods.Adapters(tam.gguf_path if tam else None, sft if sft.exists() else user.gguf_path, user.gguf_path),
            user.metrics.get("tuning"))


def save(store: Store, draft: Draft) -> int:
    with store.transaction():
        cursor = store.conn.execute(
            """INSERT INTO drafts (profile_id, task, inputs, method, params, text, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (draft.profile_id, draft.task.name, json.dumps(draft.inputs, ensure_ascii=False), draft.method,
             json.dumps(draft.params), draft.text, utc_now()),
        )
    return cursor.lastrowid


def accept(store: Store, draft_id: int, text: str | None = None) -> int:
    """Keep a draft (as generated or as edited): it becomes history for the next retrain."""
    row = store.conn.execute("SELECT profile_id, task, inputs, text FROM drafts WHERE id = ?", (draft_id,)).fetchone()
    if row is None:
        raise CopeError(f"no draft #{draft_id}", hint="see the id printed by cope draft")
    profile_id, task, inputs, generated = row
    final = (text if text is not None else generated).strip()
    if not final:
        raise CopeError("an accepted draft cannot be empty")
    with store.transaction():
        writing_id = store.add_writing(profile_id, task, json.loads(inputs), final, origin="draft", written_at=utc_now())
        if writing_id is None:  # the same text is already history
            writing_id = store.conn.execute(
                "SELECT id FROM writings WHERE profile_id = ? AND task = ? AND output = ? ORDER BY id DESC",
                (profile_id, task, final),
            ).fetchone()[0]
        store.conn.execute(
            "UPDATE drafts SET accepted_text = ?, accepted_at = ?, writing_id = ? WHERE id = ?",
            (final, utc_now(), writing_id, draft_id),
        )
    return writing_id
