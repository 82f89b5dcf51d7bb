"""Training with the real embedded model: exact export (parity), and the retrain job
(TAM, SFT, negatives, DPO, smoke check, activation) killed midway and resumed."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

pytest.importorskip("peft")

from conftest import register_adapters  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402

from cope_local.engine.llama import Context, LoraAdapter, Model  # noqa: E402
from cope_local.home import ensure_home  # noqa: E402
from cope_local.store import adapter_registry  # noqa: E402
from cope_local.store.database import Store  # noqa: E402
from cope_local.store.models import embedded_model_path  # noqa: E402
from trainer import loop  # noqa: E402
from trainer.loading import load_base, pick_device  # noqa: E402
from trainer.pipeline import Job, Options  # noqa: E402
from trainer.to_gguf import adapter_to_gguf, write_f32_copy  # noqa: E402

TEXT = ("<|im_start|>system\nYou are a news headline generator.<|im_end|>\n<|im_start|>user\nGenerate a headline "
        "for the following article.\narticle: The city council voted on Tuesday to build protected bike lanes.\n"
        "headline:<|im_end|>\n<|im_start|>assistant\nCouncil Says Yes To Protected Bike Lanes On Main Street<|im_end|>\n")
ALL_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def llama_logprobs(model_path, adapter, ids):
    model = Model(model_path)
    try:
        adapters = [(LoraAdapter(model, adapter), 1.0)] if adapter else []
        ctx = Context(model, adapters)
        ctx.decode(ids, all_logits=True)
        rows = np.stack([ctx.logits(i).astype(np.float64) for i in range(len(ids))])
        ctx.close()
    finally:
        model.close()
    return rows - np.log(np.exp(rows - rows.max(1, keepdims=True)).sum(1, keepdims=True)) - rows.max(1, keepdims=True)


GEMMA_TEXT = ("<start_of_turn>user\nYou are a news headline generator.\n\nGenerate a headline for the following article.\n"
              "article: The city council voted on Tuesday to build protected bike lanes.\nheadline:<end_of_turn>\n"
              "<start_of_turn>model\nCouncil Says Yes To Protected Bike Lanes On Main Street<end_of_turn>\n")


@pytest.fixture(params=["smollm2", "gemma3"])
def base_and_text(request):
    """The embedded llama-architecture model, and Gemma 3 (tied embeddings, 262k vocabulary,
    sliding-window attention, no q/k permutation) where its extra is installed."""
    if request.param == "smollm2":
        return embedded_model_path(), TEXT
    return request.getfixturevalue("gemma_path"), GEMMA_TEXT


@pytest.mark.slow
def test_exported_adapter_matches_transformers_on_an_f32_base(tmp_path, base_and_text):
    """On an F32 copy of the base (no quantized activations) llama.cpp + the exported GGUF gives
    transformers + PEFT's log-probs; on the quantized base only quantization noise separates them."""
    base, text = base_and_text
    device = pick_device()
    model, tokenizer = load_base(base, device=device)
    ids = [tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False).input_ids
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=ALL_TARGETS), adapter_name="user")
    batch = torch.tensor([ids], device=device.torch)
    loop.run(peft_model, [batch] * 4, lambda b: (peft_model(input_ids=b[0], labels=b[0]).loss, b[0].numel()),
             loop.Hyper(epochs=1, lr=2e-3, batch_size=1, warmup=0), device)
    adapter = adapter_to_gguf(peft_model, "user", base, tmp_path / "user.gguf")
    with torch.no_grad():
        torch_rows = torch.log_softmax(peft_model(input_ids=batch).logits[0].double(), -1).cpu().numpy()
        with peft_model.disable_adapter():
            torch_base = torch.log_softmax(peft_model(input_ids=batch).logits[0].double(), -1).cpu().numpy()
    assert np.abs(torch_rows - torch_base).max() > 0.5  # the adapter really changed the model

    f32 = write_f32_copy(base, tmp_path / "base-f32.gguf")
    llama_rows = llama_logprobs(f32, adapter, ids)
    positions = np.arange(len(ids) - 1)
    targets = np.array(ids[1:])
    llama_token, torch_token = llama_rows[positions, targets], torch_rows[positions, targets]
    assert np.abs(llama_token - torch_token).mean() < 0.01
    assert (llama_rows.argmax(1) == torch_rows.argmax(1)).mean() >= 0.99
    plain = llama_logprobs(f32, None, ids)[positions, targets]
    assert np.abs(plain - llama_token).mean() > 10 * np.abs(llama_token - torch_token).mean()

    quantized = llama_logprobs(base, adapter, ids)[positions, targets]
    assert np.abs(quantized - torch_token).mean() < 0.2  # the noise floor of Q4_1 / Q4_K_M (see the GGUF note)


def test_one_row_per_prompt_scores_each_response_as_if_alone(base_and_text):
    """DPO pairs and negative samples share their prompt in one row; the attention mask and
    positions must make that exactly the same as one sequence per response. The long-form row
    runs past Gemma 3's 512-token sliding window (its sliding layers need their own mask)."""
    from cope_local.drafting.tasks import get_task
    from cope_local.jobs.bench_fixtures import ARTICLES
    from trainer.data import Example, branch_logprobs, collate, collate_branches, response_logprobs
    from trainer.stages import BaseTrainer

    base = BaseTrainer(base_and_text[0])
    model = base.user_model()
    long_text = " ".join(ARTICLES) * 5
    with torch.no_grad():
        for weight in (p for p in model.parameters() if p.requires_grad):
            weight.normal_(0, 0.02)  # a non-zero adapter
        rows = [base.encoder.branches(get_task("headline"), {"text": article}, [f"Real Headline {i}", "Another One", "x"][: 1 + i % 3])
                for i, article in enumerate(ARTICLES[:3])]
        rows.append(base.encoder.branches(get_task("email"), {"subject": long_text[:2000]}, [long_text[:1800], long_text[1800:2600]]))
        assert len(rows[-1].prompt_ids) + len(rows[-1].responses[0]) > 700
        shared = branch_logprobs(model, collate_branches(rows, base.device.torch, base.pad_id))
        for row, scores in zip(rows, shared):
            alone = response_logprobs(model, collate([Example(row.prompt_ids, r) for r in row.responses], base.pad_id, base.device.torch))
            assert torch.allclose(scores[:len(row.responses)], alone, atol=1e-3)
            assert (scores[len(row.responses):] == 0).all()


def test_a_new_adapter_starts_from_the_seed_wherever_the_generator_stands():
    """Tuning trains one SFT adapter per learning rate in one process, after whatever ran there
    before (in `cope eval --edits`, night 1): each must start from the same initial weights, or
    the grid's first point is not reproducible (docs/benchmarks.md, section 3's OPPU row)."""
    from trainer.stages import BaseTrainer

    base = BaseTrainer(embedded_model_path())

    def initial_weights():
        model = base.user_model()
        weights = [p.detach().clone() for p in model.parameters() if p.requires_grad]
        base.model = model.unload()
        return weights

    first = initial_weights()
    torch.rand(1000)  # other work in the same process moves the generator on
    assert all(torch.equal(a, b) for a, b in zip(first, initial_weights(), strict=True))


def history(n, prefix="Ann"):
    return "text,title\n" + "".join(
        f"\"{prefix} reports on story number {i}: the town did thing {i} today.\",{prefix} Headline Number {i} Is Here\n" for i in range(n))


@pytest.mark.slow
def test_retrain_is_resumable_incremental_and_activates_atomically(cope, cope_home, tmp_path):
    (tmp_path / "ann.csv").write_text(history(10))
    (tmp_path / "corpus.csv").write_text(history(12, "Desk"))
    assert cope("import", tmp_path / "ann.csv", "-p", "ann").exit_code == 0
    assert cope("import", tmp_path / "corpus.csv", "-p", "newsroom").exit_code == 0
    home = ensure_home(cope_home)
    with Store.open(home) as store:
        store.conn.execute("UPDATE profiles SET kind = 'corpus' WHERE name = 'newsroom'")
        store.conn.commit()

    env = {**os.environ, "COPE_HOME": str(cope_home)}
    process = subprocess.Popen([sys.executable, "-m", "cope_local", "train", "-p", "ann", "--epochs", "1", "--json"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None and not list(home.adapters.rglob("negatives.json")):
        time.sleep(0.2)
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()

    with Store.open(home) as store:
        ann = store.profile_id("ann")
        assert adapter_registry.active(store, "headline", "user", ann) is None  # nothing half-activated
        assert adapter_registry.active(store, "headline", "tam", None) is not None  # the TAM finished first
        [outcome] = Job(store, "ann", options=Options(epochs=1)).run()
        assert outcome.status == "done", outcome.message
        assert outcome.metrics["resumed"] == ["sft", "negatives"]  # the killed run's finished stages
        assert outcome.metrics["smoke"]["parity_gap"] < 0.25
        active = adapter_registry.active(store, "headline", "user", ann)
        assert active.version == 1 and active.gguf_path.exists()
        assert oct(active.gguf_path.stat().st_mode & 0o777) == "0o600"
        statuses = [r[0] for r in store.conn.execute("SELECT status FROM training_runs ORDER BY id")]
        assert statuses[-1] == "done"
        [again] = Job(store, "ann", options=Options(epochs=1)).run()
        assert again.status == "skipped" and "unchanged" in again.message

    (tmp_path / "ann.csv").write_text(history(12))  # the next night: two new items
    assert cope("import", tmp_path / "ann.csv", "-p", "ann").exit_code == 0
    with Store.open(home) as store:
        [night] = Job(store, "ann", options=Options(epochs=1)).run()
        assert night.status == "done" and night.version == 2
        assert night.metrics["negatives"]["sampled"] == night.metrics["negatives"]["base_scored"] == 2  # the rest remembered

    out = json.loads(cope("draft", "-t", "headline", "-p", "ann", "--json", "text=The town held a fair.").stdout)
    assert out["method"] == "cope" and out["text"]

    # The person edits that draft and rejects another: the next night learns from both pairs (the
    # history alone did not change, the pairs did), with π_base as DPO's reference as ever.
    assert cope("accept", out["id"], "--text", "Town Fair Draws A Crowd").exit_code == 0
    other = json.loads(cope("draft", "-t", "headline", "-p", "ann", "--json", "text=Ann reports on story number 3: the town did thing 3 today.").stdout)
    assert cope("reject", other["id"]).exit_code == 0
    with Store.open(home) as store:
        [paired] = Job(store, "ann", options=Options(epochs=1)).run()
        assert paired.status == "done" and paired.version == 3, paired.message
        assert paired.metrics["real_pairs"] == {"used": 2, "available": 2, "share_cap": 0.5}
        assert paired.metrics["dpo"]["steps"] > night.metrics["dpo"]["steps"]
    assert "learned from 2 of your edited or rejected drafts" in cope("draft", "-t", "headline", "-p", "ann",
                                                                       "text=A new bridge opens.").stderr
    assert "your edits: 2 pairs" in cope("adapters", "list", "-p", "ann").output


def test_too_little_history_is_skipped(cope, cope_home, tmp_path):
    (tmp_path / "h.csv").write_text(history(3))
    cope("import", tmp_path / "h.csv", "-p", "bob")
    result = cope("train", "-p", "bob", "--json")
    [outcome] = json.loads(result.stdout)
    assert outcome["status"] == "skipped" and "need 8" in outcome["message"]
    logged = [json.loads(line) for line in (cope_home / "logs" / "train.jsonl").read_text().splitlines()]
    assert logged[-1]["profile"] == "bob" and logged[-1]["status"] == "skipped"


def test_a_failed_retrain_keeps_the_active_adapter(cope, cope_home, tmp_path, lora_files, monkeypatch):
    (tmp_path / "h.csv").write_text(history(9))
    cope("import", tmp_path / "h.csv", "-p", "cat")
    with Store.open(ensure_home(cope_home)) as store:
        register_adapters(store, store.profile_id("cat"), "headline", {"user": lora_files["user"]})

    def broken(*args, **kwargs):
        raise MemoryError("out of memory")

    monkeypatch.setattr("trainer.pipeline.BaseTrainer", broken)
    with Store.open(ensure_home(cope_home)) as store:
        [outcome] = Job(store, "cat").run()
        assert outcome.status == "failed" and "previous adapter stays active" in outcome.message
        assert adapter_registry.active(store, "headline", "user", store.profile_id("cat")).gguf_path == lora_files["user"]
        assert store.conn.execute("SELECT status, error FROM training_runs").fetchone() == ("failed", "MemoryError: out of memory")


def test_rollback_reactivates_the_previous_version(cope, cope_home, tmp_path, lora_files):
    (tmp_path / "h.csv").write_text(history(9))
    cope("import", tmp_path / "h.csv", "-p", "dan")
    with Store.open(ensure_home(cope_home)) as store:
        for path in (lora_files["tam"], lora_files["user"]):
            register_adapters(store, store.profile_id("dan"), "headline", {"user": path})
    assert "v2" in cope("adapters", "list", "-p", "dan").stdout.splitlines()[1]
    result = cope("adapters", "rollback", "-p", "dan", "-t", "headline")
    assert result.exit_code == 0 and "v1" in result.stdout
    result = cope("adapters", "rollback", "-p", "dan", "-t", "headline")
    assert result.exit_code == 1 and "no earlier user adapter" in result.stderr
