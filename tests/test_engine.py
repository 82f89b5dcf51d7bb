"""Engine behaviour with the real model: streaming, cancel, sampling, and bad files."""

import numpy as np
import pytest
from test_engine_exact import prompt_tokens

from cope_local.drafting.draft import generate, text_of, until_line_break
from cope_local.drafting.prompts import render_chat
from cope_local.drafting.settings import for_family
from cope_local.engine.decoding import Sampling
from cope_local.engine.engine import Engine, NgramBlock, Plan, Step
from cope_local.engine.llama import Context
from cope_local.engine.sampling import sample_continuations, score_continuations
from cope_local.errors import CopeError
from cope_local.gguf.header import read_header
from cope_local.gguf.lora import write_lora_gguf
from cope_local.jobs.bench_fixtures import ARTICLES
from cope_local.progress import Cancel
from cope_local.store.models import embedded_model_path


def cope_plan(lora_files):
    return Plan(user=((lora_files["tam"], 1.0), (lora_files["user"], 1.0)), base=((lora_files["tam"], 1.0),))


def test_streaming_cancel_then_the_next_draft_is_unaffected(engine, lora_files):
    prompt, plan = prompt_tokens(engine, ARTICLES[2]), cope_plan(lora_files)
    full = [s.token for s in engine.generate(prompt, plan, 20)]
    cancel, seen = Cancel(), []
    for step in engine.generate(prompt, plan, 20, cancel=cancel):
        seen.append(step.token)
        if len(seen) == 3:
            cancel.set()
    assert seen == full[:3]
    stream = engine.generate(prompt, plan, 20)
    assert [next(stream).token for _ in range(2)] == full[:2]
    stream.close()  # a consumer walking away also stops it
    assert [s.token for s in engine.generate(prompt, plan, 20)] == full


def test_each_step_says_why_the_token_was_chosen(engine, lora_files):
    steps = list(engine.generate(prompt_tokens(engine, ARTICLES[3]), cope_plan(lora_files), 20))
    for step in steps:
        assert step.choice.head_size >= 1
        if step.choice.head_size > 1:
            assert step.choice.reward is not None
        else:
            assert step.choice.user_top == step.token
    assert "".join(s.text for s in steps).strip()


def test_a_one_line_task_stops_at_the_first_line_break(engine):
    """A headline ends with its line (the embedded model otherwise runs on into hashtags); a
    long-form draft goes on past line breaks."""
    messages = [{"role": "user", "content": "List three fruits, one per line."}]
    prompt, plan = engine.tokenize_prompt(render_chat(engine.model.chat_template(), messages)), Plan(user=())
    full = [s.token for s in engine.generate(prompt, plan, 40)]
    lines = text_of(engine, full).split("\n")
    assert len(lines) > 1 and lines[0].strip()  # the model does write several lines here
    one_line = [s.token for s in generate(engine, prompt, plan, for_family("lamp", max_tokens=40))]
    assert one_line == full[:len(one_line)] and text_of(engine, one_line) == lines[0].strip()
    long_form = for_family("longlamp", max_tokens=40, penalty=1.0, no_repeat=0)
    assert [s.token for s in generate(engine, prompt, plan, long_form)] == full


@pytest.mark.parametrize("pieces, kept", [
    (["\n", "Rain", " again", "\n", "#Rain"], ["\n", "Rain", " again"]),  # a leading break does not end it
    (["Why", "?\n", "#Rain"], ["Why", "?\n"]),  # a token holding the break keeps its text before it
    (["Why", "\n#", "Rain"], ["Why"]),
])
def test_the_line_break_rule_on_pieces(pieces, kept):
    closed = []

    def stream():
        try:
            yield from (Step(i, piece, None) for i, piece in enumerate(pieces))
        finally:
            closed.append(True)

    assert [s.text for s in until_line_break(stream())] == kept and closed == [True]


@pytest.mark.parametrize("contrast", [False, True])
def test_a_draft_does_not_end_before_its_minimum_length(engine, lora_files, contrast):
    prompt = prompt_tokens(engine, ARTICLES[0])
    plan = cope_plan(lora_files) if contrast else Plan(user=((lora_files["user"], 1.0),))
    natural = [s.token for s in engine.generate(prompt, plan, 120)]
    assert len(natural) < 120  # it ended on its own (where depends on the CPU's arithmetic)
    longer = [s.token for s in engine.generate(prompt, plan, len(natural) + 30, min_tokens=len(natural) + 10)]
    assert len(longer) >= len(natural) + 10 and longer[:len(natural)] == natural
    assert not any(engine.model.is_end(t) for t in longer)


def repeats(sequence, n):
    block = NgramBlock(n)
    for token in sequence:
        block.add(token)
    return block.banned()


def test_no_n_gram_is_repeated_when_asked(engine):
    assert repeats([1, 2, 3, 1, 2], 3) == [3] and repeats([1, 2, 1, 2], 0) == [] and repeats([1], 3) == []
    prompt = prompt_tokens(engine, ARTICLES[1])
    tokens = [s.token for s in engine.generate(prompt, Plan(user=()), 120, min_tokens=120, no_repeat=3)]
    grams = [tuple(tokens[i:i + 3]) for i in range(len(tokens) - 2)]
    assert len(tokens) == 120 and len(grams) == len(set(grams))


def test_sampling_is_reproducible_with_a_seed(engine, lora_files):
    prompt, plan = prompt_tokens(engine, ARTICLES[4]), cope_plan(lora_files)
    sampling = Sampling(temperature=1.0, top_p=0.9)
    first = [s.token for s in engine.generate(prompt, plan, 16, sampling, seed=7)]
    again = [s.token for s in engine.generate(prompt, plan, 16, sampling, seed=7)]
    assert first == again
    others = {tuple(s.token for s in engine.generate(prompt, Plan(user=()), 16, sampling, seed=k)) for k in range(4)}
    assert len(others) > 1


def test_more_samples_than_slots_are_drawn_as_slots_free_up(engine):
    """A context with six slots draws three samples of each of five prompts: each sample is as
    long as asked and scores as it was sampled (a slot that takes another sample starts from its
    prompt, decoded afresh or copied from a slot that holds it)."""
    prompts = [prompt_tokens(engine, article) for article in ARTICLES[:5]]
    ctx = Context(engine.model, [], n_ctx=2 * 3 * 512, n_seq_max=2 * 3, unified=False)
    single = Context(engine.model, [], n_ctx=1024, n_seq_max=3)
    try:
        limits = [5, 20, 3, 12, 8]
        drawn = sample_continuations(ctx, prompts, 3, limits, Sampling(temperature=1.0, top_p=0.95), np.random.default_rng(1))
        assert [len(samples) for samples in drawn] == [3] * 5
        for prompt, samples, limit in zip(prompts, drawn, limits):
            assert all(len(tokens) <= limit for tokens, _ in samples)
            [alone] = score_continuations(single, [prompt], [[t for t, _ in samples]])
            for (tokens, sampled_logp), apart in zip(samples, alone):
                assert sampled_logp == pytest.approx(apart, abs=0.01 * max(len(tokens), 1))
    finally:
        ctx.close()
        single.close()


def test_samples_of_several_prompts_in_one_context_score_as_each_alone(engine, lora_files):
    """Negative mining's batched sampling: each sample's log-probability agrees with scoring it
    alone in a one-prompt context (batching changes llama.cpp's quantized sums slightly only)."""
    prompts = [prompt_tokens(engine, article) for article in ARTICLES[:4]]
    adapters = [(engine.adapter(lora_files["tam"]), 1.0)]
    group = Context(engine.model, adapters, n_ctx=4096, n_seq_max=3 * len(prompts))
    single = Context(engine.model, adapters, n_ctx=1024, n_seq_max=3)
    try:
        heard = {}
        drawn = sample_continuations(group, prompts, 3, [12, 6, 12, 9], Sampling(temperature=1.0, top_p=0.95),
                                     np.random.default_rng(0), finished=heard.__setitem__)
        assert [len(samples) for samples in drawn] == [3, 3, 3, 3] and heard == dict(enumerate(drawn))
        assert all(len(tokens) <= limit for samples, limit in zip(drawn, [12, 6, 12, 9]) for tokens, _ in samples)
        rescored = score_continuations(group, prompts, [[t for t, _ in samples] for samples in drawn])
        for prompt, samples, batched in zip(prompts, drawn, rescored):
            [alone] = score_continuations(single, [prompt], [[t for t, _ in samples]])
            for (tokens, sampled_logp), together, apart in zip(samples, batched, alone):
                # Sampling steps one token per sequence, as scoring alone does here: the same sums.
                # Scoring many tokens in one big batch takes other quantized kernels.
                assert sampled_logp == pytest.approx(apart, abs=0.01 * len(tokens))
                # How far depends on the CPU's kernels: ≤ .05/token on the first machines, up to
                # .12/token for one 6-token sample on an AMD EPYC (AVX2, no AVX-512).
                assert together == pytest.approx(apart, abs=0.2 * len(tokens))
    finally:
        group.close()
        single.close()


def test_the_nucleus_is_the_prefix_of_a_full_stable_sort():
    from cope_local.engine.decoding import _nucleus

    rng = np.random.default_rng(0)
    for trial in range(60):
        logits = rng.normal(0, rng.uniform(0.5, 6), 5000)
        logits[rng.integers(0, 5000, 200)] = logits.max() - trial % 4  # ties, some inside the nucleus
        probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        for top_p in (0.5, 0.95, 0.9999):
            full = np.argsort(-probs, kind="stable")
            want = full[: int(np.searchsorted(np.cumsum(probs[full]), top_p)) + 1]
            assert np.array_equal(_nucleus(probs, top_p), want)


def truncated(path, tmp_path):
    data = path.read_bytes()
    target = tmp_path / "cut.gguf"
    target.write_bytes(data[: len(data) // 2])
    return target


def wrong_arch(tmp_path):
    base = read_header(embedded_model_path())
    info = base.tensors["blk.0.attn_q.weight"]
    write_lora_gguf(tmp_path / "qwen.gguf", "qwen2", {"blk.0.attn_q.weight": (np.ones((4, info.shape[0])), np.ones((info.shape[1], 4)))})
    return tmp_path / "qwen.gguf"


def wrong_shape(tmp_path):
    write_lora_gguf(tmp_path / "shape.gguf", "llama", {"blk.0.attn_q.weight": (np.ones((4, 100)), np.ones((100, 4)))})
    return tmp_path / "shape.gguf"


def tied_embeddings(tmp_path):
    base = read_header(embedded_model_path())
    vocab_in, n_embd = base.tensors["token_embd.weight"].shape
    write_lora_gguf(tmp_path / "embd.gguf", "llama", {"token_embd.weight": (np.ones((4, vocab_in)), np.ones((n_embd, 4)))})
    return tmp_path / "embd.gguf"


@pytest.mark.parametrize("make, message", [
    (lambda lf, tmp: tmp / "missing.gguf", "adapter file not found"),
    (lambda lf, tmp: truncated(lf["user"], tmp), "truncated"),
    (lambda lf, tmp: (tmp / "junk.gguf").write_bytes(b"\0" * 4096) and tmp / "junk.gguf", "bad magic"),
    (lambda lf, tmp: embedded_model_path(), "is not a LoRA adapter"),
    (lambda lf, tmp: wrong_arch(tmp), "is for a 'qwen2' model"),
    (lambda lf, tmp: wrong_shape(tmp), "wrong shape"),
    (lambda lf, tmp: tied_embeddings(tmp), "tied embeddings"),
])
def test_bad_adapters_are_refused_with_the_file_named(engine, lora_files, tmp_path, make, message):
    path = make(lora_files, tmp_path)
    with pytest.raises(CopeError, match=message) as caught:
        list(engine.generate(prompt_tokens(engine, ARTICLES[0]), Plan(user=((path, 1.0),)), 4))
    assert path.name in str(caught.value)
    assert [s.token for s in engine.generate(prompt_tokens(engine, ARTICLES[0]), Plan(user=()), 4)]  # still usable


def test_bad_model_files_are_refused(tmp_path):
    cut = truncated(embedded_model_path(), tmp_path)
    with pytest.raises(CopeError, match="truncated"):
        Engine(cut)
    with pytest.raises(CopeError, match="not found"):
        Engine(tmp_path / "none.gguf")


def test_a_model_closes_the_contexts_and_adapters_made_on_it_first(lora_files):
    """Ownership as llama-cpp-python's _internals: nothing made on a model outlives it (the smoke
    check's context used to be closed outside a finally)."""
    from cope_local.engine.llama import LoraAdapter, Model

    model = Model(embedded_model_path())
    adapter = LoraAdapter(model, lora_files["user"])
    ctx = Context(model, [(adapter, 1.0)], n_ctx=256)
    ctx.decode(model.tokenize("Hello there"))
    model.close()
    assert ctx.closed and adapter.closed and model.closed


def test_bench_decode_reports_every_schedule_and_what_the_machine_allows():
    """`cope bench decode` end to end at its smallest (its numbers go to docs/benchmarks.md)."""
    from cope_local.jobs import bench_decode

    result = bench_decode.run(n_prompts=1, max_tokens=4, rounds=1)
    assert {"greedy_user", "cope_naive", "cope_optimized"} <= set(result["buffers"]["by_mode"]["plain"])
    assert result["two_decodes_at_once"]["two_vs_one"] > 0
    assert result["memory"]["two_contexts"]["process_bytes"] > result["memory"]["one_context"]["process_bytes"]
