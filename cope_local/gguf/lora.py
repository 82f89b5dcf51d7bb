"""LoRA adapters as llama.cpp GGUF files: writing one from numpy arrays, and checking one
against a base model before llama.cpp sees it (a bad file must be an error, never an abort)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cope_local.errors import CopeError
from cope_local.gguf.header import GGUFFormatError, GGUFHeader, read_header
from cope_local.home import PRIVATE_FILE

SUFFIX_A, SUFFIX_B = ".lora_a", ".lora_b"


def write_lora_gguf(path: Path, architecture: str, pairs: dict[str, tuple[np.ndarray, np.ndarray]],
                    name: str = "cope-adapter") -> None:
    """Write `{base tensor name: (A [r, in], B [out, r])}` as an F32 LoRA GGUF.

    Any scaling must already be folded into B: the file carries no alpha, so llama.cpp's scale
    is exactly the user scale. Written to a temporary name and renamed, so a crash leaves no
    half-written adapter.
    """
    import gguf

    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        writer = gguf.GGUFWriter(str(partial), arch=architecture)
        writer.add_string("general.type", "adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_name(name)
        for base_name, (a, b) in sorted(pairs.items()):
            writer.add_tensor(base_name + SUFFIX_A, np.ascontiguousarray(a, dtype=np.float32))
            writer.add_tensor(base_name + SUFFIX_B, np.ascontiguousarray(b, dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    except OSError as exc:  # typically a full disk
        partial.unlink(missing_ok=True)
        raise CopeError(f"cannot write the adapter {path}: {exc.strerror or exc}",
                        hint="free some disk space and run cope train again; the active adapter is unchanged") from exc
    os.chmod(partial, PRIVATE_FILE)
    os.replace(partial, path)


def validate(adapter_path: Path, base: GGUFHeader) -> GGUFHeader:
    """Everything llama.cpp would assert on, checked up front with a message naming the file."""
    adapter_path = Path(adapter_path)
    retrain = "retrain the adapter for this model: cope train"
    if not adapter_path.exists():
        raise CopeError(f"adapter file not found: {adapter_path}", hint=retrain)
    try:
        header = read_header(adapter_path)
    except GGUFFormatError as exc:
        raise CopeError(f"adapter {adapter_path} is not usable: {exc}", hint=retrain) from exc
    meta = header.metadata
    if meta.get("general.type") != "adapter" or meta.get("adapter.type") != "lora":
        raise CopeError(f"{adapter_path} is not a LoRA adapter GGUF", hint="give a file written by cope (or llama.cpp's convert_lora_to_gguf.py)")
    if header.architecture != base.architecture:
        raise CopeError(
            f"adapter {adapter_path.name} is for a '{header.architecture}' model, the base is '{base.architecture}'",
            hint=retrain,
        )
    for name, info in header.tensors.items():
        stem, suffix = name[:-7], name[-7:]
        if suffix not in (SUFFIX_A, SUFFIX_B):
            raise CopeError(f"adapter {adapter_path.name}: unexpected tensor {name}", hint=retrain)
        target = base.tensors.get(stem)
        partner = header.tensors.get(stem + (SUFFIX_B if suffix == SUFFIX_A else SUFFIX_A))
        if target is None or partner is None:
            raise CopeError(f"adapter {adapter_path.name}: {stem} is not in this base model or lacks its pair", hint=retrain)
        a, b = (info, partner) if suffix == SUFFIX_A else (partner, info)
        if a.shape[0] != target.shape[0] or b.shape[1] != target.shape[1] or a.shape[1] != b.shape[0]:
            raise CopeError(f"adapter {adapter_path.name}: {stem} has the wrong shape for this base model", hint=retrain)
        if stem == "token_embd.weight" and "output.weight" not in base.tensors:
            # llama.cpp applies a token_embd LoRA to the tied output too, and aborts.
            raise CopeError(f"adapter {adapter_path.name} adapts the tied embeddings, which llama.cpp cannot apply", hint=retrain)
    return header
