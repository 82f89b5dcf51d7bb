"""The training stages of CoPe (shared/notes/cope-method.md), each a function of a BaseTrainer:
TAM, OPPU SFT, Best-of-K negatives from π_base, DPO against π_base."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import astuple, dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model

from cope_local.drafting.tasks import Task
from cope_local.engine.loader import Loading
from cope_local.gguf.architectures import chat_template
from cope_local.gguf.header import read_header
from cope_local.progress import Progress, Report, ignore
from cope_local.store.run_folder import RunFolder
from trainer import loop, negatives
from trainer.data import (
    Branches,
    Encoder,
    Example,
    branch_logprobs,
    by_tokens,
    collate,
    collate_branches,
    length,
    limit,
    one_line,
    response_logprobs,
    response_loss,
)
from trainer.loading import Device, cpu_threads, load_base, pick_device, small_enough_to_cache
from trainer.to_gguf import adapter_to_gguf, check_exportable, write_f32_copy


@dataclass(frozen=True)
class LoraSpec:
    rank: int
    alpha: int
    targets: tuple[str, ...]
    dropout: float = 0.0

    def config(self) -> LoraConfig:
        return LoraConfig(r=self.rank, lora_alpha=self.alpha, target_modules=list(self.targets),
                          lora_dropout=self.dropout, task_type="CAUSAL_LM")


# The paper's public code: TAM r16 a16 on q,k,v,o; the user's adapter r8 a8 on q,v.
TAM_LORA = LoraSpec(16, 16, ("q_proj", "k_proj", "v_proj", "o_proj"), 0.05)
USER_LORA = LoraSpec(8, 8, ("q_proj", "v_proj"))
# The TAM's adapter (q, k, v, o, with dropout) keeps more activations per token than the user's:
# on long-form data its stage peaked at 4.6 GB RSS with 1024 tokens per forward, 2.95 GB with 512,
# at the same speed. The user's stages keep 1024: with 512 their DPO ran 35 % slower (41 s → 56 s).
TAM_HYPER = loop.Hyper(epochs=3, lr=1e-4, batch_size=8, micro_batch_tokens=512)
SFT_HYPER = {"lamp": loop.Hyper(epochs=2, lr=1e-5, batch_size=4), "longlamp": loop.Hyper(epochs=2, lr=1e-4, batch_size=4)}
DPO_HYPER = {"lamp": loop.Hyper(epochs=2, lr=5e-6, batch_size=4, max_grad_norm=0.3),
             "longlamp": loop.Hyper(epochs=1, lr=5e-6, batch_size=4, max_grad_norm=0.3)}
DPO_BETA = {"lamp": 3.0, "longlamp": 0.05}
SCORING_TOKENS = 2048  # padded tokens per transformers forward when scoring samples (no gradients kept)


class Mined(NamedTuple):
    pairs: list[dict]  # DPO's (chosen, rejected) pairs with their π_base reference log-probs
    stats: dict  # items sampled and scored by π_base afresh (not remembered), seconds of sampling and scoring; {} when cached


class BaseTrainer:
    """The base model in transformers (loaded once per job) and the same GGUF for llama.cpp: the
    stages below train adapters on it."""

    def __init__(self, gguf_path: Path, device: Device | None = None, hf_dir: Path | None = None,
                 cache: Path | None = None, loading: Loading | None = None, seed: int = 0):
        self.gguf_path = Path(gguf_path)
        self.loading = loading  # how llama.cpp loads the base here (None: engine.loader decides)
        self.device = device or pick_device()
        self.cache = cache  # dequantized copies of a small model, kept between jobs
        header = read_header(self.gguf_path)
        check_exportable(header.architecture, self.gguf_path)
        self.model, self.tokenizer = load_base(self.gguf_path, hf_dir, device=self.device, cache=cache and cache / "hf")
        self.template = chat_template(header.architecture, header.metadata.get("tokenizer.chat_template"))
        self.encoder = Encoder(self.tokenizer, self.template)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.tokenizer.eos_token_id
        self.tam_merged = False
        self.seed = seed  # of new adapters' initial weights

    def examples(self, task: Task, rows: list[tuple[dict, str]]) -> list[Example]:
        return [self.encoder.example(task, inputs, output) for inputs, output in rows]

    def sft_loss(self, model):
        def loss(batch: list[Example]):
            tensors = collate(batch, self.pad_id, self.device.torch)
            return response_loss(model, tensors), int(tensors["attention_mask"].sum())  # tokens processed, prompt included
        return loss

    def mean_loss(self, model, task: Task, rows) -> float:
        """Mean cross-entropy per response token of `rows` (a validation loss)."""
        examples, total = self.examples(task, rows), 0.0
        with torch.no_grad(), self.device.autocast():
            for part in by_tokens(examples, SCORING_TOKENS):
                total -= float(response_logprobs(model, collate(part, self.pad_id, self.device.torch)).sum())
        return total / max(sum(len(e.response_ids) for e in examples), 1)

    # -- TAM ---------------------------------------------------------------------------------

    def train_tam(self, task: Task, rows, folder: RunFolder, hyper: loop.Hyper = TAM_HYPER, spec: LoraSpec = TAM_LORA,
                  report: Report = ignore, validation=()) -> loop.LoopResult:
        """The task adapter on other people's `rows`; its loss on the held-out `validation` rows
        before and after training goes into the result's `validation` (per response token)."""
        before = self.mean_loss(self.model, task, validation) if validation else None
        model = self._new_adapter(spec, "tam")
        result = loop.run(model, self.examples(task, rows), self.sft_loss(model), hyper, self.device,
                          folder.checkpoint("tam"), report, "tam")
        if validation:
            result.validation = {"items": len(validation), "loss_before": round(before, 4),
                                 "loss_after": round(self.mean_loss(model, task, validation), 4)}
        model.save_pretrained(folder.peft)
        adapter_to_gguf(model, "tam", self.gguf_path, folder.final)
        self.model = model.merge_and_unload()  # π_base = base + TAM from here on
        self.tam_merged = True
        return result

    # save_pretrained puts an adapter named X in <folder>/X: load from there.
    def merge_tam(self, peft_dir: Path) -> None:
        self.model = PeftModel.from_pretrained(self.model, str(peft_dir), adapter_name="tam").merge_and_unload()
        self.tam_merged = True

    # -- OPPU SFT ----------------------------------------------------------------------------

    def user_model(self, spec: LoraSpec = USER_LORA, resume_from: Path | None = None):
        if resume_from and (resume_from / "adapter_config.json").exists():
            return PeftModel.from_pretrained(self.model, str(resume_from), adapter_name="user", is_trainable=True)
        return self._new_adapter(spec, "user")

    def _new_adapter(self, spec: LoraSpec, name: str):
        torch.manual_seed(self.seed)  # the same start wherever the process's generator stands
        return get_peft_model(self.model, spec.config(), adapter_name=name)

    def train_sft(self, model, task: Task, rows, folder: RunFolder, hyper: loop.Hyper, report: Report = ignore) -> loop.LoopResult:
        result = loop.run(model, self.examples(task, rows), self.sft_loss(model), hyper, self.device,
                          folder.checkpoint("sft"), report, "sft")
        model.save_pretrained(folder.sft_peft)
        adapter_to_gguf(model, "user", self.gguf_path, folder.sft)
        return result

    # -- negatives ---------------------------------------------------------------------------

    def mine_negatives(self, model, task: Task, rows, tam_gguf: Path | None, folder: RunFolder,
                       seed: int = 0, report: Report = ignore, remembered: Path | None = None) -> Mined:
        """For each item: K samples from π_base (negatives.py; those already drawn from this π_base
        are read from `remembered`); keep the one with the lowest implicit reward
        Σ_t log π_user(y_t) - log π_base(y_t) over its whole length (paper Eq. 5, α=1). The
        rewards are computed by `model` itself (π_user; π_base with its adapter disabled), the real
        output and all samples of an item sharing one row, which also gives DPO its reference
        log-probabilities. π_base's log-probs do not change between nights: they are remembered
        beside the samples, so a nightly run scores only the new items under π_base. Kept in the
        folder's negatives file."""
        if folder.negatives.exists():
            return Mined(json.loads(folder.negatives.read_text()), {})
        prompts = [self.encoder.prompt_ids(task, inputs) for inputs, _ in rows]
        known = negatives.Remembered(remembered)
        started = time.perf_counter()
        stats = {"sampled": sum(len(known.get(prompt)) < negatives.K for prompt in prompts)}
        with self.sampling_model(folder.path) as path:  # its verdict is the base model's
            samples = negatives.sample(path, tam_gguf, self.loading, prompts, limit(task), one_line(task), cpu_threads(),
                                       np.random.default_rng(seed), known, report)
        stats["sampling_seconds"], started = round(time.perf_counter() - started, 1), time.perf_counter()
        scored = [(inputs, [output, *texts], self.encoder.branches(task, inputs, [output, *texts]))
                  for (inputs, output), texts in zip(rows, samples) if texts]
        base_logps = negatives.Remembered(remembered and negatives.logps_file(remembered), "logps")
        unscored = [branches for *_, branches in scored if not base_logps.get(astuple(branches))]
        stats["base_scored"], done, total = len(unscored), 0, len(unscored) + len(scored)
        report(Progress("scoring", done, total))
        for chunk in by_tokens(unscored, SCORING_TOKENS):
            base_logps.add([astuple(branches) for branches in chunk], self._logps(model, chunk, with_adapter=False).tolist())
            done += len(chunk)
            report(Progress("scoring", done, total))
        pairs = []
        for chunk in by_tokens(scored, SCORING_TOKENS, size=lambda item: length(item[2])):
            samples_only = [Branches(b.prompt_ids, b.responses[1:]) for *_, b in chunk]  # π_user needs no real output
            for (inputs, texts, branches), u in zip(chunk, self._logps(model, samples_only, with_adapter=True).tolist()):
                b = base_logps.get(astuple(branches))
                reward, worst = min((u[i - 1] - b[i], i) for i in range(1, len(texts)))
                pairs.append({"inputs": inputs, "chosen": texts[0], "rejected": texts[worst], "reward": reward,
                              "reference": [b[0], b[worst]]})  # DPO's reference: the same rows, scored by π_base
            done += len(chunk)
            report(Progress("scoring", done, total))
        stats["scoring_seconds"] = round(time.perf_counter() - started, 1)
        folder.negatives.write_text(json.dumps(pairs, ensure_ascii=False))
        return Mined(pairs, stats)

    @contextlib.contextmanager
    def sampling_model(self, scratch: Path):
        """π_base's weights for llama.cpp: for a small model an F32 copy (the very weights the
        trainer sees; batched, it also evaluates 1.3-2x faster here than Q4_1), kept in the
        cache when there is one; else the GGUF itself."""
        if not small_enough_to_cache(self.gguf_path):
            yield self.gguf_path
            return
        folder = self.cache or scratch
        copy = folder / "base-f32.gguf"
        if not copy.exists():
            folder.mkdir(parents=True, exist_ok=True)
            write_f32_copy(self.gguf_path, copy.with_name(copy.name + ".partial")).rename(copy)
        try:
            yield copy
        finally:
            if not self.cache:
                copy.unlink(missing_ok=True)

    def _logps(self, model, branches, with_adapter: bool) -> torch.Tensor:
        adapter = contextlib.nullcontext() if with_adapter else model.disable_adapter()
        with torch.no_grad(), adapter, self.device.autocast():
            return branch_logprobs(model, collate_branches(branches, self.device.torch, self.pad_id)).float().cpu()

    # -- DPO ---------------------------------------------------------------------------------

    def train_dpo(self, model, task: Task, pairs: list[dict], folder: RunFolder, hyper: loop.Hyper, beta: float,
                  report: Report = ignore) -> loop.LoopResult:
        """DPO with π_base (base + TAM: the user adapter disabled) as the reference, as the paper.
        Chosen and rejected share their prompt in one row (collate_branches)."""
        items = [self.encoder.branches(task, p["inputs"], [p["chosen"], p["rejected"]]) for p in pairs]
        reference = torch.tensor([p.get("reference", [0.0, 0.0]) for p in pairs])
        missing = [i for i, p in enumerate(pairs) if "reference" not in p]
        for chosen in by_tokens(missing, SCORING_TOKENS, size=lambda i: length(items[i])):
            reference[chosen] = self._logps(model, [items[i] for i in chosen], with_adapter=False)
        index = {id(item): i for i, item in enumerate(items)}

        def loss(batch):
            tensors = collate_branches(batch, self.device.torch, self.pad_id)
            logps = branch_logprobs(model, tensors)
            ref = reference[[index[id(item)] for item in batch]].to(logps.device)
            margin = (logps[:, 0] - ref[:, 0]) - (logps[:, 1] - ref[:, 1])
            return -F.logsigmoid(beta * margin).mean(), int((tensors["position_ids"] > 0).sum()) + len(batch)

        result = loop.run(model, items, loss, hyper, self.device, folder.checkpoint("dpo"), report, "dpo")
        model.save_pretrained(folder.peft)
        adapter_to_gguf(model, "user", self.gguf_path, folder.final)
        return result


def with_overrides(hyper: loop.Hyper, **overrides) -> loop.Hyper:
    return replace(hyper, **{k: v for k, v in overrides.items() if v is not None})
