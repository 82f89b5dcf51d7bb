"""A model file's identity and its checked header: what every layer may ask of a GGUF."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cope_local.errors import CopeError
from cope_local.gguf.header import GGUFFormatError, GGUFHeader, read_header

_FINGERPRINT_CHUNK = 4 << 20


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
        raise CopeError(f"cannot read {path}: {exc.strerror or exc}", hint="check the path and its permissions") from exc
    if not header.architecture:
        raise CopeError(f"{path} has no general.architecture key", hint=f"is this a llama.cpp {what}?")
    return header
