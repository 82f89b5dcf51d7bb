"""The engine's base GGUF loaded into transformers (dequantized), so training sees the same weights."""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from cope_local.engine.engine import usable_cores
from cope_local.engine.loader import cpu_flags
from cope_local.errors import CopeError
from cope_local.gguf.header import read_header

hf_logging.disable_progress_bar()


@dataclass(frozen=True)
class Device:
    name: str  # "cuda", "mps" or "cpu"
    dtype: torch.dtype | None  # the autocast dtype; None = plain fp32

    @property
    def torch(self) -> torch.device:
        return torch.device(self.name)

    def autocast(self):
        """Mixed precision in `dtype` where set; a no-op context in plain fp32."""
        return torch.autocast(self.name, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)


def cpu_threads() -> int:
    """COPE_TRAIN_THREADS, else the cores this process may run on (taskset / cgroup aware)."""
    if os.environ.get("COPE_TRAIN_THREADS"):
        return int(os.environ["COPE_TRAIN_THREADS"])
    return max(1, usable_cores())


def pick_device() -> Device:
    """CUDA, else Apple MPS, else the CPU; bf16 where the hardware does it well."""
    if torch.cuda.is_available():
        return Device("cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return Device("mps", torch.float16)
    torch.set_num_threads(cpu_threads())
    # bf16 autocast only where the CPU has bf16 matrix units (Intel AMX): a training step of
    # SmolLM2-135M + LoRA (4 x 300 tokens, one thread) took 3.0 s under bf16 and 5.6 s in fp32 on
    # an AMX Xeon; on a CPU without them a step (4 x 70 tokens) took 3.1 s under bf16 against
    # 0.85 s in fp32, so there the CPU trains in fp32. (The paper trains in bf16, on GPUs.)
    return Device("cpu", torch.bfloat16 if "amx_bf16" in cpu_flags() else None)


def load_tokenizer(gguf_path: Path, hf_dir: Path | None = None):
    if hf_dir:
        return AutoTokenizer.from_pretrained(hf_dir)
    return AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)


def small_enough_to_cache(gguf_path: Path) -> bool:
    """Whether an F32 copy of the model stays under 1 GiB (SmolLM2-135M: 0.5 GiB)."""
    return sum(int(math.prod(t.shape)) for t in read_header(gguf_path).tensors.values()) * 4 <= 1 << 30


def load_base(gguf_path: Path, hf_dir: Path | None = None, device: Device | None = None, cache: Path | None = None):
    """(model in fp32 on `device`, tokenizer). `hf_dir`: a local HF folder paired with the GGUF.
    `cache`: a folder where the dequantized model is kept after the first load (if small enough):
    loading it back takes a second or two instead of dequantizing the GGUF again."""
    if not hf_dir and cache is not None and small_enough_to_cache(gguf_path):
        if not (cache / "config.json").exists():
            model, tokenizer = load_base(gguf_path, device=Device("cpu", None))
            partial = cache.with_name(cache.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            model.save_pretrained(partial)
            tokenizer.save_pretrained(partial)
            partial.rename(cache)
        hf_dir = cache
    return _load(gguf_path, hf_dir, device or pick_device())


def _load(gguf_path: Path, hf_dir: Path | None, device: Device):
    from transformers import GgufConfig

    try:
        if hf_dir:
            model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
        else:
            model = AutoModelForCausalLM.from_pretrained(
                gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32,
                quantization_config=GgufConfig(dequantize=True),  # a plain dense model, trainable
            )
    except (OSError, ValueError, KeyError) as exc:
        raise CopeError(f"transformers could not load {gguf_path}: {exc}", hint="is its architecture supported? see `cope models`") from exc
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    model.config.use_cache = False
    return model.to(device.torch), load_tokenizer(gguf_path, hf_dir)
