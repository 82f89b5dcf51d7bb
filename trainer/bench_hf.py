"""The paper's public CoPe decoding loop (transformers + PEFT), timed beside cope's llama.cpp
engine by `cope bench decode` (cope_local.jobs.bench_decode)."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model

from cope_local.drafting.prompts import render_prompt
from cope_local.drafting.tasks import get_task
from cope_local.jobs.bench_fixtures import ARTICLES
from trainer.loading import load_base


def paper_loop(model_path: Path, n_prompts: int, max_tokens: int, dtype: str = "float32") -> dict:
    """The paper's public CoPe loop (`contrastive_decoding` in its OPPU_sft+dpo.py) on the CPU, one
    thread: an expert model (PEFT user adapter) and a separate amateur model, both KV-cached,
    softmax over the full vocabulary, V_head truncation, log-ratio, argmax. The paper loads bf16;
    `dtype="float32"` is the stronger variant on a CPU without bf16 arithmetic. The TAM would be
    merged into both models' weights, which costs nothing per token, so it is left out here."""
    torch.set_num_threads(1)
    torch.manual_seed(0)  # the random user adapter, so runs draft the same tokens
    amateur, tokenizer = load_base(model_path)
    amateur = amateur.to(getattr(torch, dtype)).eval()
    amateur.config.use_cache = True
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    expert = get_peft_model(copy.deepcopy(amateur), LoraConfig(r=8, lora_alpha=16, target_modules=targets,
                                                               init_lora_weights=False)).eval()
    task = get_task("headline")
    tokens, gen_tokens, generating, started = 0, 0, 0.0, time.perf_counter()
    with torch.no_grad():
        for article in (ARTICLES * 4)[:n_prompts]:
            text = render_prompt(task, {"text": article}, tokenizer.chat_template)
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids
            step_in, expert_cache, amateur_cache, first, chosen = ids, None, None, None, 0
            for count in range(max_tokens):
                if count == 1:  # timed from the first token on, as `timed` does for llama.cpp
                    first = time.perf_counter()
                out_e = expert(input_ids=step_in, past_key_values=expert_cache, use_cache=True)
                out_a = amateur(input_ids=step_in, past_key_values=amateur_cache, use_cache=True)
                expert_cache, amateur_cache = out_e.past_key_values, out_a.past_key_values
                p_e, p_a = F.softmax(out_e.logits[:, -1, :], -1), F.softmax(out_a.logits[:, -1, :], -1)
                head = p_e >= 0.1 * p_e.max(-1, keepdim=True).values
                truncated = p_e * head
                truncated = truncated / (truncated.sum(-1, keepdim=True) + 1e-8)
                score = torch.log(truncated + 1e-8) - 0.3 * torch.log(p_a + 1e-8)
                token = int(score.argmax(-1))
                tokens += 1
                if token == tokenizer.eos_token_id:
                    break
                chosen += 1
                step_in = torch.tensor([[token]])
            if first is not None:
                generating += time.perf_counter() - first
                gen_tokens += chosen - 1
    elapsed = time.perf_counter() - started
    return {"tokens": tokens, "seconds": round(elapsed, 3), "tok_s": round(tokens / elapsed, 2),
            "gen_tok_s": round(gen_tokens / generating, 2) if generating else None, "threads": 1, "dtype": dtype}
