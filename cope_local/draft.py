"""Drafting for a person and a task: pick the adapters and defaults, stream, remember the draft.

Methods: base (the plain model), tam (+ task adapter), oppu (+ the user's adapter, greedy),
cope (oppu contrasted against tam). Missing adapters degrade to what exists, with a note.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from . import adapter_versions
from .engine.decoding import Sampling
from .engine.engine import Engine, Plan, Schedule, Step
from .errors import CopeError
from .models import ModelInfo, resolve
from .prompts import render_prompt
from .store import Store, utc_now
from .tasks import Task, get_task

METHODS = ("base", "tam", "oppu", "cope")
# Paper defaults per task family (cope-method.md). The penalty acts on CoPe's contrast score.
FAMILY_DEFAULTS = {
    "lamp": {"alpha": 0.3, "tau": 0.1, "penalty": 1.0, "max_tokens": 100},
    "longlamp": {"alpha": 0.1, "tau": 0.1, "penalty": 7.0, "max_tokens": 600},
}
DEFAULT_N_CTX = 2048

_engines: dict[tuple, Engine] = {}
_engines_lock = threading.Lock()


def engine_for(model: ModelInfo, n_ctx: int = DEFAULT_N_CTX, n_threads: int | None = None) -> Engine:
    """The loaded model is cached per process: the TUI drafts many times on one load."""
    n_threads = n_threads or int(os.environ.get("COPE_THREADS", "1"))
    key = (str(model.path), n_ctx, n_threads)
    with _engines_lock:
        if key not in _engines:
            _engines[key] = Engine(model.path, n_ctx=n_ctx, n_threads=n_threads)
        return _engines[key]


def close_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.close()
        _engines.clear()


def usable_adapter(store: Store, task: str, kind: str, profile_id: int | None, model: ModelInfo, notes: list[str]) -> Path | None:
    """The active adapter's file, if it exists and was trained on this very base model."""
    chosen = adapter_versions.active(store, task, kind, profile_id)
    if chosen is None:
        return None
    label = "task adapter (TAM)" if kind == "tam" else "your adapter"
    if chosen.base_fingerprint != model.fingerprint:
        notes.append(f"the active {label} v{chosen.version} was trained for another base model; not used (retrain: cope train)")
        return None
    if not chosen.gguf_path.exists():
        notes.append(f"the active {label} v{chosen.version} is missing at {chosen.gguf_path}; not used (retrain: cope train)")
        return None
    return chosen.gguf_path


def plan_for(method: str, tam: Path | None, user: Path | None, alpha: float, tau: float, notes: list[str]) -> tuple[str, Plan]:
    """The contexts a method needs, degrading when adapters are missing; returns the method really used."""
    tam_set = ((tam, 1.0),) if tam else ()
    if method in ("oppu", "cope") and user is None:
        notes.append("no adapter trained on your writing yet for this task (run: cope train); drafting with the "
                     + ("task adapter" if tam else "base model"))
        method = "tam" if tam else "base"
    if method == "tam" and tam is None:
        notes.append("no task adapter (TAM) for this task; drafting with the base model")
        method = "base"
    if method == "base":
        return method, Plan(user=())
    if method == "tam":
        return method, Plan(user=tam_set)
    user_set = (*tam_set, (user, 1.0))
    if method == "oppu":
        return method, Plan(user=user_set)
    if tam is None:
        notes.append("no task adapter (TAM): contrasting your adapter against the plain base model")
    return method, Plan(user=user_set, base=tam_set, alpha=alpha, tau=tau)


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
    schedule: Schedule = field(default_factory=Schedule)

    def stream(self, cancel: threading.Event | None = None) -> Iterator[Step]:
        sampling = Sampling(self.params["temperature"], self.params["top_p"], self.params["penalty"])
        started = time.perf_counter()
        try:
            for step in self.engine.generate(
                self.prompt_tokens, self.plan, self.params["max_tokens"], sampling,
                seed=self.params["seed"], cancel=cancel, schedule=self.schedule,
            ):
                self.steps.append(step)
                yield step
        finally:
            self.elapsed = time.perf_counter() - started

    @property
    def text(self) -> str:
        return b"".join(self.engine.model.piece(s.token) for s in self.steps).decode("utf-8", errors="replace").strip()

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


def prepare(store: Store, profile: str, task_name: str, inputs: dict[str, str], method: str = "cope",
            model_name: str | None = None, **overrides) -> Draft:
    if method not in METHODS:
        raise CopeError(f"unknown method '{method}'", hint="use one of: " + ", ".join(METHODS))
    task = get_task(task_name)
    unknown = set(inputs) - set(task.inputs)
    if unknown:
        raise CopeError(f"task '{task.name}' has no field {', '.join(sorted(unknown))}", hint=f"its inputs: {', '.join(task.inputs)}")
    profile_id = store.profile_id(profile)
    model = resolve(store, model_name)
    params = {**FAMILY_DEFAULTS[task.family], "temperature": 0.0, "top_p": 1.0, "seed": None}
    params.update({k: v for k, v in overrides.items() if v is not None})
    notes: list[str] = []
    tam = usable_adapter(store, task.name, "tam", None, model, notes)
    user = usable_adapter(store, task.name, "user", profile_id, model, notes)
    used, plan = plan_for(method, tam, user, params["alpha"], params["tau"], notes)
    if used != "cope" and overrides.get("penalty") is None:
        params["penalty"] = 1.0  # the family penalty is defined on CoPe's contrast score
    threads = store.setting("threads")
    engine = engine_for(model, n_threads=int(threads) if threads else None)
    prompt_tokens = fit_prompt(engine, task, dict(inputs), params["max_tokens"], notes)
    return Draft(engine, profile_id, task, dict(inputs), used, params, plan, prompt_tokens, notes)


def fit_prompt(engine: Engine, task: Task, inputs: dict[str, str], max_tokens: int, notes: list[str]) -> list[int]:
    """Tokens of the prompt; an input too long for the context is cut, the instruction kept."""
    model = engine.model
    budget = engine.n_ctx - min(max_tokens, engine.n_ctx // 2)
    template, bos, eos = model.chat_template(), model.special_text(model.bos), model.special_text(model.eos)
    for _ in range(8):
        tokens = engine.tokenize_prompt(render_prompt(task, inputs, template, bos, eos))
        if len(tokens) <= budget:
            return tokens
        longest = max(task.inputs, key=lambda name: len(inputs[name]))
        keep = int(len(inputs[longest]) * budget / len(tokens) * 0.9)
        if keep < 1:
            break
        inputs[longest] = inputs[longest][:keep]
        if not any("shortened" in n for n in notes):
            notes.append(f"the {task.label(longest)} was too long for the model's context and was shortened")
    raise CopeError("the prompt does not fit the model's context", hint="shorten the input")


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
