"""A fast reader for a GGUF file's metadata and tensor table (no tensor data is touched).

gguf.GGUFReader materialises every array (a 49k-entry vocabulary takes seconds); this reads
what cope needs in milliseconds and checks the file is as long as its tensor table says.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

MAGIC = b"GGUF"
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class GGUFFormatError(ValueError):
    pass


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # ggml order (ne0 first)
    type: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    metadata: dict[str, object]
    tensors: dict[str, TensorInfo]
    data_start: int
    file_size: int

    @property
    def architecture(self) -> str | None:
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None


class _Cursor:
    def __init__(self, buffer, size: int):
        self.buffer, self.size, self.pos = buffer, size, 0

    def take(self, fmt: str):
        width = struct.calcsize("<" + fmt)
        if self.pos + width > self.size:
            raise GGUFFormatError("the file ends inside its header (truncated)")
        value = struct.unpack_from("<" + fmt, self.buffer, self.pos)[0]
        self.pos += width
        return value

    def string(self) -> str:
        length = self.take("Q")
        if self.pos + length > self.size:
            raise GGUFFormatError("the file ends inside its header (truncated)")
        raw = bytes(self.buffer[self.pos:self.pos + length])
        self.pos += length
        return raw.decode("utf-8", errors="replace")

    def value(self, kind: int, keep_arrays: bool):
        if kind in _SCALARS:
            return self.take(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item_kind, count = self.take("I"), self.take("Q")
            if keep_arrays:
                return [self.value(item_kind, keep_arrays) for _ in range(count)]
            if item_kind in _SCALARS:  # skip without decoding
                self.pos += count * struct.calcsize("<" + _SCALARS[item_kind])
                if self.pos > self.size:
                    raise GGUFFormatError("the file ends inside its header (truncated)")
            else:
                for _ in range(count):
                    self.value(item_kind, keep_arrays)
            return None
        raise GGUFFormatError(f"unknown metadata value type {kind}")


def read_header(path: Path, keep_arrays: bool = False) -> GGUFHeader:
    """Metadata (arrays skipped unless asked) and tensor table; raises GGUFFormatError if damaged."""
    with path.open("rb") as handle:
        size = path.stat().st_size
        if size < 24:
            raise GGUFFormatError("too short to be a GGUF file")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            cursor = _Cursor(buffer, size)
            if bytes(buffer[:4]) != MAGIC:
                raise GGUFFormatError("not a GGUF file (bad magic)")
            cursor.pos = 4
            version, n_tensors, n_kv = cursor.take("I"), cursor.take("Q"), cursor.take("Q")
            if version not in (2, 3):
                raise GGUFFormatError(f"unsupported GGUF version {version}")
            metadata = {}
            for _ in range(n_kv):
                key = cursor.string()
                metadata[key] = cursor.value(cursor.take("I"), keep_arrays)
            raw_tensors = []
            for _ in range(n_tensors):
                name = cursor.string()
                shape = tuple(cursor.take("Q") for _ in range(cursor.take("I")))
                raw_tensors.append((name, shape, cursor.take("I"), cursor.take("Q")))
    alignment = int(metadata.get("general.alignment") or 32)
    data_start = -(-cursor.pos // alignment) * alignment
    tensors = {}
    for name, shape, kind, offset in raw_tensors:
        nbytes = _nbytes(shape, kind)
        if data_start + offset + nbytes > size:
            raise GGUFFormatError(f"tensor {name} runs past the end of the file (truncated)")
        tensors[name] = TensorInfo(name, shape, kind, offset, nbytes)
    return GGUFHeader(version, metadata, tensors, data_start, size)


def _nbytes(shape: tuple[int, ...], kind: int) -> int:
    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
    except (ValueError, KeyError):
        raise GGUFFormatError(f"unknown tensor type {kind}") from None
    count = 1
    for dim in shape:
        count *= dim
    return count // block * type_size
