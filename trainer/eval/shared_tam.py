"""The task adapter of an eval run, trained once and shared: by the users of a run, by the shards
of a run on other machines (`cope eval --tam DIR`) and by Ray workers. A shared TAM folder holds
adapter.gguf, its PEFT weights and tam.json, which says what it was trained on; it is used only
where that is what the run would train."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from cope_local.drafting.tasks import Task
from cope_local.errors import CopeError
from cope_local.gguf.files import fingerprint
from cope_local.store import adapter_registry
from cope_local.store.database import Store
from cope_local.store.models import ModelInfo
from cope_local.store.run_folder import RunFolder

# A shared TAM's tam.json from before a field existed was trained as its default says.
WRITTEN_BEFORE = {"seed": 0}


def identity(store: Store, task: Task, model: ModelInfo, tam_items: int, seed: int = 0) -> dict:
    """What this run's TAM is trained on: the task, the base model, the corpus rows and the seed."""
    rows = store.corpus(task.name, -1, tam_items)
    digest = hashlib.sha256()
    for row in sorted(json.dumps(list(row), sort_keys=True) for row in rows):
        digest.update(row.encode())
    return {"task": task.name, "model": model.fingerprint, "items": len(rows), "corpus": digest.hexdigest()[:16], "seed": seed}


def ensure(store: Store, task: Task, wanted: dict, given: Path | None, folder: Path, train: Callable[[], Path | None]) -> Path | None:
    """The run's shared TAM folder: `given`, or `folder` from an earlier start, when it was trained
    on what this run would train it on; else trained now (`train`) and published to `folder`."""
    source = given or (folder if RunFolder(folder).shared_tam_info.exists() else None)
    if source is None:
        if train() is None:
            return None  # too little corpus: π_base is the plain base model
        publish(store, task, wanted, folder)
        return folder
    check(source, wanted)
    adopt(store, task, source)
    return source


def check(folder: Path, wanted: dict) -> None:
    path = RunFolder(folder).shared_tam_info
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CopeError(f"{path}: not a shared task adapter ({exc})", hint="give the tam/ folder an eval run wrote") from exc
    for field, value in wanted.items():
        if found.get(field, WRITTEN_BEFORE.get(field)) != value:
            raise CopeError(f"the task adapter in {folder} was trained with another {field} ({found.get(field)!r}; "
                            f"this run: {value!r})", hint="use the TAM of a run with the same data, --users, --fold, "
                                                          "--tam-items, --seed and model, or leave --tam out to train one")


def adopt(store: Store, task: Task, folder: Path) -> None:
    """Make `folder`'s TAM the store's active one (a copy in the store) unless it already is."""
    source = RunFolder(folder)
    current = adapter_registry.active(store, task.name, "tam", None)
    if current and current.gguf_path.exists() and fingerprint(current.gguf_path) == fingerprint(source.final):
        return
    info = json.loads(source.shared_tam_info.read_text(encoding="utf-8"))
    target = RunFolder(store.home.adapters / "tam" / task.name / f"shared-{info['corpus']}")
    shutil.copytree(folder, target.path, dirs_exist_ok=True)
    adapter_registry.register(store, task=task.name, kind="tam", profile_id=None, gguf_path=target.final,
                              peft_path=target.peft / "tam", base_fingerprint=info["model"],
                              metrics={**info, "shared_from": str(folder)}, activate=True)


def publish(store: Store, task: Task, wanted: dict, folder: Path) -> None:
    """Copy the store's active TAM to `folder` with its tam.json, atomically."""
    current = adapter_registry.active(store, task.name, "tam", None)
    partial = RunFolder(folder.with_name(folder.name + ".partial"))
    shutil.rmtree(partial.path, ignore_errors=True)
    shutil.copytree(current.peft_path, partial.peft / "tam")
    shutil.copyfile(current.gguf_path, partial.final)
    partial.shared_tam_info.write_text(json.dumps(wanted, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    partial.path.rename(folder)
