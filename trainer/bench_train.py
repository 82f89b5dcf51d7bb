"""`cope bench train` (the torch half of the benchmarks): wall time of each stage of a nightly
retrain for one ~300-item user (LaMP-layout data), and training tokens/s against TRL's
SFTTrainer defaults."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import hashlib
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from cope_local.drafting.prompts import render_prompt
from cope_local.drafting.tasks import get_task
from cope_local.home import ensure_home
from cope_local.importers import run_import
from cope_local.store.database import Store
from cope_local.store.models import adopt, embedded, inspect
from trainer import loop
from trainer.eval import shared_tam
from trainer.pipeline import Job, Options, dequantized_cache
from trainer.stages import SFT_HYPER, USER_LORA, BaseTrainer


def pick_user(store: Store, items: int, task: str) -> str:
    """The eval profile whose history of `task` is closest to `items` (at least that many if any)."""
    counts = [(p["name"], p["tasks"].get(task, 0)) for p in store.profiles() if p["kind"] == "eval"]
    enough = [c for c in counts if c[1] >= items] or counts
    return min(enough, key=lambda c: abs(c[1] - items))[0]


def anonymous(profile: str) -> str:
    """The benchmark user as a short hash: results are committed, the data's author names are not."""
    return "sha256:" + hashlib.sha256(profile.encode()).hexdigest()[:10]


def sft_speed(store: Store, profile: str, items: int, steps: int, model_path: Path) -> dict:
    """Training tokens/s of our SFT loop and of TRL's SFTTrainer (its defaults, LoRA as ours) on
    the same items for the same number of steps."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer


    task = get_task("headline")
    rows = [(w.inputs, w.output) for w in store.writings(profile=profile, task="headline")[:items]]
    trainer_base = BaseTrainer(model_path)
    model = trainer_base.user_model()
    batch = SFT_HYPER["lamp"].batch_size
    examples = trainer_base.examples(task, rows)[: steps * batch]
    ours = loop.run(model, examples, trainer_base.sft_loss(model), loop.Hyper(epochs=1, lr=1e-5, batch_size=batch),
                    trainer_base.device)
    model.unload()

    base, tokenizer = trainer_base.model, trainer_base.tokenizer
    data = Dataset.from_list([{"prompt": render_prompt(task, inputs, tokenizer.chat_template), "completion": output + tokenizer.eos_token}
                              for inputs, output in rows])
    with tempfile.TemporaryDirectory() as out:
        # use_cpu is the one change from the defaults: without it TRL refuses to start on a CPU.
        config = SFTConfig(output_dir=out, max_steps=steps, report_to=[], save_strategy="no", use_cpu=True)
        trainer = SFTTrainer(model=base, args=config, train_dataset=data, processing_class=tokenizer,
                             peft_config=LoraConfig(r=USER_LORA.rank, lora_alpha=USER_LORA.alpha,
                                                    target_modules=list(USER_LORA.targets), task_type="CAUSAL_LM"))
        loader = trainer.get_train_dataloader()
        tokens = sum(int(b["attention_mask"].sum()) for _, b in zip(range(steps), loader))
        started = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # TRL prints its logs; stdout is our JSON
            trainer.train()
        seconds = time.perf_counter() - started
    trl = {"steps": steps, "batch_size": config.per_device_train_batch_size, "bf16": config.bf16,
           "gradient_checkpointing": config.gradient_checkpointing, "seconds": round(seconds, 1),
           "tokens_per_s": round(tokens / seconds, 1)}
    return {"ours": {"steps": ours.steps, "batch_size": batch, "seconds": round(ours.seconds, 1),
                     "tokens_per_s": round(ours.tokens_per_second, 1)},
            "trl_sft_defaults": trl, "speedup": round(ours.tokens_per_second / trl["tokens_per_s"], 2)}


def peak_rss() -> int:
    """This process's peak resident memory in bytes (since `reset_peak_rss`, where Linux allows)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def reset_peak_rss() -> None:
    """Forget the peak so far (the warm-up's), so the peak measured is the retrain's alone."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed memory back, as a fresh process has none
    restart_peak()


def restart_peak() -> bool:
    """Linux: start the peak counter (VmHWM) again from the current RSS; False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class StagePeaks:
    """A run's peak RSS per stage, from its progress reports: when a new stage reports, the peak
    so far is the previous stage's (with the work between reports: loading, export, merging) and
    the counter starts again. Empty where the counter cannot be restarted (not Linux)."""

    def __init__(self):
        self.stage, self.peaks = "load", {}

    def __call__(self, progress) -> None:
        if progress.stage != self.stage:
            self.close()
            self.stage = progress.stage

    def close(self) -> None:
        peak = peak_rss()
        if restart_peak():
            self.peaks[self.stage] = max(self.peaks.get(self.stage, 0), peak)


def retrain(store: Store, profile: str, task: str, items: int, tam_items: int) -> dict:
    """One nightly `cope train` of `task` on the newest `items` of `profile`: its stages' seconds and metrics."""
    started, peaks = time.perf_counter(), StagePeaks()
    [outcome] = Job(store, profile, options=Options(max_items=items, tam_max_items=tam_items), report=peaks).run([task])
    peaks.close()
    return {"items": outcome.metrics.get("items"), "status": outcome.status, "message": outcome.message,
            "stage_seconds": {k: round(v, 1) for k, v in outcome.timings.items()},
            "nightly_seconds": round(sum(v for k, v in outcome.timings.items() if k not in ("tam",)), 1),
            "total_seconds_with_tam": round(time.perf_counter() - started, 1),
            "peak_rss_bytes_by_stage": peaks.peaks,
            "metrics": {k: v for k, v in outcome.metrics.items() if k not in ("timings", "history")}}


def run(data: Path, items: int = 300, tam_items: int = 200, trl_steps: int = 10, speed_only: bool = False,
        task: str | None = None, tam: Path | None = None, model_path: Path | None = None, new_items: int = 0) -> dict:
    """The retrain of the user closest to `items`; its TAM is trained first (outside the nightly
    total), or taken from an eval run's `tam` folder (checked for task and model only: a TAM's
    corpus does not change what the nightly stages cost). `model_path`: another base GGUF than
    the embedded one (it becomes the benchmark store's default). `new_items`: then a second
    night on `items + new_items` items, where only those are sampled afresh (older items stand
    in for new ones: a night's cost depends on how many items are new, not on which)."""
    with tempfile.TemporaryDirectory() as folder:
        home = ensure_home(Path(folder))
        with Store.open(home) as store:
            run_import(store, [data / "questions.json"], None, task)
            task = task or {name for p in store.profiles() for name in p["tasks"]}.pop()  # LaMP data holds one task
            profile = pick_user(store, items + new_items, task)
            model = embedded()
            if model_path and Path(model_path) != model.path:
                model = adopt(store, inspect(Path(model_path)))
            if speed_only:
                return {"data": str(data), "user": anonymous(profile), "sft_speed": sft_speed(store, profile, items, trl_steps, model.path)}
            if tam:
                shared_tam.check(tam, {"task": task, "model": model.fingerprint})
                shared_tam.adopt(store, get_task(task), tam)
            # Every nightly run after the first finds the dequantized copies the first one made.
            with BaseTrainer(model.path, cache=dequantized_cache(home, model)).sampling_model(home.root):
                pass
            reset_peak_rss()
            result = {"data": str(data), "model": model.name, "task": task, "user": anonymous(profile),
                      "tam": str(tam) if tam else f"trained on {tam_items} items", **retrain(store, profile, task, items, tam_items)}
            if new_items:
                result["next_night"] = retrain(store, profile, task, items + new_items, tam_items)
            nights = [result, *([result["next_night"]] if new_items else [])]  # their peak, before the TRL comparison below
            result["peak_rss_bytes"] = max([peak_rss(), *(p for night in nights for p in night["peak_rss_bytes_by_stage"].values())])
            if task == "headline" and trl_steps:
                result["sft_speed"] = sft_speed(store, profile, items, trl_steps, model.path)
    return result


if __name__ == "__main__":
    print(json.dumps(run(Path("../shared/data/huffpost-lamp4")), indent=2))
