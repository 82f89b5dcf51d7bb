"""A person's draft: their adapters and history from the store, the model kept loaded between
drafts (the app drafts many times on one load), then drafting.draft.prepare; the draft recorded
in the store (store.drafts)."""

from __future__ import annotations

import os
import threading

from cope_local.drafting import methods
from cope_local.drafting.draft import Draft, check_inputs, prepare
from cope_local.drafting.methods import DRAFT_METHODS, METHODS
from cope_local.drafting.settings import TYPICAL_ITEMS
from cope_local.drafting.tasks import get_task
from cope_local.engine.engine import Engine
from cope_local.engine.loader import Loading
from cope_local.store import adapter_registry, drafts, models
from cope_local.store.adapter_registry import AdapterVersion
from cope_local.store.database import Store
from cope_local.store.models import ModelInfo, resolve

_engines: dict[tuple, Engine] = {}
_engines_lock = threading.Lock()


def engine_for(model: ModelInfo, loading: Loading, n_threads: int | None = None) -> Engine:
    """The loaded model is cached per process: the TUI drafts many times on one load."""
    n_threads = n_threads or int(os.environ.get("COPE_THREADS", "1"))
    key = (str(model.path), loading.mode, n_threads)
    with _engines_lock:
        if key not in _engines:
            _engines[key] = Engine(model.path, n_threads=n_threads, loading=loading)
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


def person_adapters(store: Store, task: str, profile_id: int, model: ModelInfo,
                    notes: list[str]) -> tuple[methods.Adapters, AdapterVersion | None]:
    """The task adapter and the person's adapters (after SFT, and final) usable with `model`, and
    the person's adapter version (its metrics hold what tuning chose), None where there is none."""
    tam = usable_adapter(store, task, "tam", None, model, notes)
    user = usable_adapter(store, task, "user", profile_id, model, notes)
    tam_file = tam.gguf_path if tam else None
    if user is None:
        return methods.Adapters(tam_file), None
    return methods.Adapters(tam_file, *user.user_stages()), user


def prepare_for(store: Store, profile: str, task_name: str, inputs: dict[str, str], method_name: str = "cope",
                model_name: str | None = None, **overrides) -> Draft:
    """`profile`'s draft of `inputs` by `method_name`, with their adapters and tuned settings."""
    methods.method(method_name, DRAFT_METHODS)
    task = get_task(task_name)
    check_inputs(task, inputs)
    profile_id = store.profile_id(profile)
    model = resolve(store, model_name)
    notes: list[str] = []
    adapters, user = person_adapters(store, task.name, profile_id, model, notes)
    learned = (user.metrics.get("real_pairs") or {}).get("used") if user else 0
    if learned:
        notes.append(f"your adapter v{user.version} learned from {learned} of your edited or rejected drafts")
    threads = store.setting("threads")
    engine = engine_for(model, models.loading(store, model), n_threads=int(threads) if threads else None)
    history = [w.output for w in store.writings(profile=profile, task=task.name, limit=TYPICAL_ITEMS)]
    draft = prepare(engine, task, inputs, method_name, adapters, user.metrics.get("tuning") if user else None, history,
                    allowed=DRAFT_METHODS, notes=notes, **overrides)
    draft.proposed_by = user.id if user and METHODS[draft.method].user else None
    return draft


def save(store: Store, profile: str, draft: Draft) -> int:
    """Record `draft` as `profile`'s, with the adapter version that proposed it; its id (for cope
    accept and cope reject)."""
    return drafts.add(store, store.profile_id(profile), draft.task.name, draft.inputs, draft.method,
                      draft.settings.as_dict(), draft.text, draft.proposed_by)
