"""PEFT LoRA -> llama.cpp LoRA GGUF (F32), exactly as llama.cpp will apply it.

Per shared/notes/gguf-lora-adapters.md: tensor names through gguf's name map; PEFT's scaling
folded into lora_B (the file carries no alpha, so llama.cpp's scale is the user scale); for the
llama architecture, the rows of q/k lora_B permuted as llama.cpp's converter permutes q/k.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from cope_local.errors import CopeError
from cope_local.gguf.architectures import PERMUTED_QK, SUPPORTED
from cope_local.gguf.header import read_header
from cope_local.gguf.lora import validate, write_lora_gguf

_ARCHES = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}


def permute_rows(weight: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's LlamaModel.permute on the rows (HF order -> GGUF order)."""
    rows = weight.shape[0]
    return weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def check_exportable(architecture: str, where: Path) -> None:
    """Refuse, before any training, a base whose adapters could not be written for llama.cpp."""
    if architecture not in SUPPORTED or architecture not in _ARCHES:
        raise CopeError(f"{where.name}: cope cannot train adapters for architecture '{architecture}'",
                        hint="supported: " + ", ".join(sorted(SUPPORTED)) + "; draft with another model (cope models)")


def lora_pairs(peft_model, adapter: str, architecture: str, n_head: int, n_head_kv: int, n_layers: int,
               tied_embeddings: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{GGUF base tensor name: (A [r, in], scaling * B [out, r])} for every LoRA layer of `adapter`."""
    from peft.tuners.lora import LoraLayer

    if architecture not in _ARCHES:
        raise CopeError(f"cannot export adapters for architecture '{architecture}'", hint="cope models lists the supported ones")
    names = gguf.get_tensor_name_map(_ARCHES[architecture], n_layers)
    pairs = {}
    for module_name, module in peft_model.named_modules():
        if not isinstance(module, LoraLayer) or adapter not in module.lora_A:
            continue
        hf_name = module_name.removeprefix("base_model.model.")
        target = names.get_name(hf_name + ".weight", try_suffixes=(".weight",))
        if target is None:
            raise CopeError(f"no llama.cpp tensor for {hf_name}", hint="train LoRA on attention/MLP projections only")
        if target == "token_embd.weight" and tied_embeddings:
            raise CopeError("a LoRA on tied embeddings cannot be applied by llama.cpp", hint="drop embed_tokens from the targets")
        a = module.lora_A[adapter].weight.detach().float().cpu().numpy()
        b = module.lora_B[adapter].weight.detach().float().cpu().numpy() * module.scaling[adapter]
        if architecture in PERMUTED_QK and ".attn_q." in target:
            b = permute_rows(b, n_head)
        elif architecture in PERMUTED_QK and ".attn_k." in target:
            b = permute_rows(b, n_head_kv)
        pairs[target] = (a, b)
    if not pairs:
        raise CopeError(f"the model has no LoRA weights for adapter '{adapter}'", hint="export the folder PEFT saved that adapter in")
    return pairs


def adapter_to_gguf(peft_model, adapter: str, base_gguf: Path, out: Path) -> Path:
    """Write `adapter` of `peft_model` (trained on `base_gguf`) as a llama.cpp LoRA GGUF and check it."""
    base = read_header(base_gguf)
    arch = base.architecture
    meta = base.metadata
    pairs = lora_pairs(
        peft_model, adapter, arch,
        n_head=int(meta[f"{arch}.attention.head_count"]),
        n_head_kv=int(meta.get(f"{arch}.attention.head_count_kv") or meta[f"{arch}.attention.head_count"]),
        n_layers=int(meta[f"{arch}.block_count"]),
        tied_embeddings="output.weight" not in base.tensors,
    )
    write_lora_gguf(out, arch, pairs, name=f"cope-{adapter}")
    validate(out, base)
    return out


def peft_dir_to_gguf(peft_dir: Path, base_gguf: Path, out: Path, hf_dir: Path | None = None) -> Path:
    """`cope adapters export`: a saved PEFT adapter folder -> GGUF."""
    from peft import PeftModel

    from trainer.loading import load_base

    model, _ = load_base(base_gguf, hf_dir)
    peft_model = PeftModel.from_pretrained(model, str(peft_dir), adapter_name="export")
    return adapter_to_gguf(peft_model, "export", base_gguf, out)


def write_f32_copy(base_gguf: Path, out: Path) -> Path:
    """The same weights transformers sees (every tensor dequantized) as an F32 GGUF: llama.cpp
    then computes without quantized activations, which makes exact parity checks possible."""
    reader = gguf.GGUFReader(str(base_gguf))
    arch = read_header(base_gguf).architecture
    writer = gguf.GGUFWriter(str(out), arch=arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in ("general.architecture", "general.file_type", "general.alignment"):
            continue
        kind = field.types[0]
        if kind == gguf.GGUFValueType.ARRAY:
            item = field.types[-1]
            values = [bytes(field.parts[i]).decode("utf-8") if item == gguf.GGUFValueType.STRING else field.parts[i].tolist()[0]
                      for i in field.data]
            writer.add_array(field.name, values)
        elif kind == gguf.GGUFValueType.STRING:
            writer.add_string(field.name, bytes(field.parts[field.data[0]]).decode("utf-8"))
        else:
            writer.add_key_value(field.name, field.parts[field.data[0]].tolist()[0], kind)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for tensor in reader.tensors:
        data = gguf.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        writer.add_tensor(tensor.name, data.reshape([int(d) for d in reversed(tensor.shape)]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
