"""`cope bench train`: wall time of each stage of a nightly retrain for one ~300-item headline
user (LaMP-layout data), and training tokens/s against TRL's SFTTrainer defaults."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from ..home import ensure_home
from ..importers import run_import
from ..store import Store


def pick_user(store: Store, items: int) -> str:
    """The eval profile whose headline history is closest to `items` (at least that many if any)."""
    counts = [(p["name"], p["tasks"].get("headline", 0)) for p in store.profiles() if p["kind"] == "eval"]
    enough = [c for c in counts if c[1] >= items] or counts
    return min(enough, key=lambda c: abs(c[1] - items))[0]


def trl_tokens_per_second(store: Store, profile: str, rows: int, steps: int) -> dict:
    """TRL SFTTrainer with its defaults (LoRA like ours) on the same items, `steps` steps."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from trainer.loading import load_base
    from trainer.stages import USER_LORA
    from ..models import embedded
    from ..prompts import render_prompt
    from ..tasks import get_task

    model, tokenizer = load_base(embedded().path)
    task = get_task("headline")
    items = store.writings(profile=profile, task="headline")[:rows]
    data = Dataset.from_list([
        {"prompt": render_prompt(task, w.inputs, tokenizer.chat_template), "completion": w.output + tokenizer.eos_token}
        for w in items
    ])
    with tempfile.TemporaryDirectory() as out:
        config = SFTConfig(output_dir=out, max_steps=steps, report_to=[], save_strategy="no", logging_strategy="no")
        trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                             peft_config=LoraConfig(r=USER_LORA.rank, lora_alpha=USER_LORA.alpha,
                                                    target_modules=list(USER_LORA.targets), task_type="CAUSAL_LM"))
        tokens = 0
        for batch in trainer.get_train_dataloader():
            tokens += int(batch["attention_mask"].sum())
            break
        per_batch = tokens
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    return {"steps": steps, "batch_size": config.per_device_train_batch_size, "bf16": config.bf16,
            "gradient_checkpointing": config.gradient_checkpointing, "seconds": round(seconds, 1),
            "tokens_per_s_estimate": round(per_batch * steps / seconds, 1)}


def run(data: Path, items: int = 300, tam_items: int = 200, trl_steps: int = 10) -> dict:
    from trainer.pipeline import Job, Options

    with tempfile.TemporaryDirectory() as folder:
        home = ensure_home(Path(folder))
        with Store.open(home) as store:
            run_import(store, [data / "questions.json"], None)
            profile = pick_user(store, items)
            started = time.perf_counter()
            [outcome] = Job(store, profile, options=Options(max_items=items, tam_max_items=tam_items)).run(["headline"])
            total = time.perf_counter() - started
            result = {
                "data": str(data), "user": profile, "items": outcome.metrics.get("items"), "status": outcome.status,
                "message": outcome.message, "stage_seconds": {k: round(v, 1) for k, v in outcome.timings.items()},
                "nightly_seconds": round(sum(v for k, v in outcome.timings.items() if k not in ("tam",)), 1),
                "total_seconds_with_tam": round(total, 1),
                "metrics": {k: v for k, v in outcome.metrics.items() if k not in ("timings", "history")},
            }
            try:
                result["trl_sft_defaults"] = trl_tokens_per_second(store, profile, items, trl_steps)
            except Exception as exc:  # TRL's API moves; the comparison is informative, not essential
                result["trl_sft_defaults"] = {"error": f"{type(exc).__name__}: {exc}"}
    ours = result["metrics"].get("sft", {}).get("tokens_per_s")
    trl = result["trl_sft_defaults"].get("tokens_per_s_estimate")
    result["sft_speedup_vs_trl"] = round(ours / trl, 2) if ours and trl else None
    return result


if __name__ == "__main__":
    print(json.dumps(run(Path("../shared/data/huffpost-lamp4")), indent=2))
