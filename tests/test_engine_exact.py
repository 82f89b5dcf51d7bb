"""The engine chooses exactly the tokens of the plain reference, for every method and schedule."""

import numpy as np
import pytest
from reference_cope import reference_generate

from cope_local.drafting.prompts import render_prompt
from cope_local.drafting.tasks import get_task
from cope_local.engine.decoding import Sampling
from cope_local.engine.engine import BasePacing, Plan
from cope_local.engine.llama import Context
from cope_local.jobs.bench_fixtures import ARTICLES

MAX_TOKENS = 24


def prompt_tokens(engine, article):
    model = engine.model
    text = render_prompt(get_task("headline"), {"text": article}, model.chat_template(), "", "")
    return engine.tokenize_prompt(text)


def plans(lora_files):
    tam, user = ((lora_files["tam"], 1.0),), ((lora_files["tam"], 1.0), (lora_files["user"], 1.0))
    return {
        "base": (Plan(user=()), 1.0),
        "tam": (Plan(user=tam), 1.0),
        "oppu": (Plan(user=user), 1.0),
        "cope": (Plan(user=user, base=tam, alpha=0.3, tau=0.1), 1.0),
        "cope-penalty": (Plan(user=user, base=tam, alpha=0.5, tau=0.05), 1.5),
        "cope-no-tam": (Plan(user=((lora_files["user"], 1.0),), base=(), alpha=1.0, tau=0.05), 1.0),
        "oppu-penalty": (Plan(user=user), 7.0),  # long-form: the same penalty rule as CoPe
    }


MODELS = {"smollm2": ("engine", "lora_files", ARTICLES), "gemma3": ("gemma_engine", "gemma_loras", ARTICLES[:3])}
CASES = [("smollm2", m) for m in ("base", "tam", "oppu", "cope", "cope-penalty", "cope-no-tam", "oppu-penalty")] + \
    [("gemma3", m) for m in ("oppu", "cope", "cope-penalty", "oppu-penalty")]  # 262k-token vocabulary, sliding window


@pytest.mark.slow
@pytest.mark.parametrize("model, method", CASES)
def test_engine_matches_reference(request, model, method):
    engine_fixture, loras_fixture, articles = MODELS[model]
    engine, lora_files = request.getfixturevalue(engine_fixture), request.getfixturevalue(loras_fixture)
    plan, penalty = plans(lora_files)[method]
    head_sizes, changed = [], 0
    for article in articles:
        prompt = prompt_tokens(engine, article)
        want = reference_generate(engine, prompt, plan.user, plan.base, plan.alpha, plan.tau, penalty, MAX_TOKENS)
        schedules = [BasePacing()] if plan.base is None else [BasePacing(), BasePacing(lazy=False, concurrent=False), BasePacing(lazy=True, concurrent=False)]
        for schedule in schedules:
            steps = list(engine.generate(prompt, plan, MAX_TOKENS, Sampling(penalty=penalty), schedule=schedule))
            assert [s.token for s in steps] == want, f"{method} / {schedule} differs on: {article}"
        head_sizes += [s.choice.head_size for s in steps if s.choice.head_size]
        changed += sum(s.choice.contrast_changed for s in steps)
    if plan.base is not None:
        # The comparison is only meaningful if the contrast really had choices to make.
        assert max(head_sizes) > 1
        assert changed > 0


def test_adapters_change_the_output(engine, lora_files):
    """Over the fixture articles (on some CPUs the weak random TAM leaves one article's greedy
    output as it was, so one article alone does not tell)."""
    outputs = {m: tuple(s.token for article in ARTICLES[:4]
                        for s in engine.generate(prompt_tokens(engine, article), plan, MAX_TOKENS, Sampling(penalty=p)))
               for m, (plan, p) in plans(lora_files).items() if m in ("base", "tam", "oppu")}
    assert len(set(outputs.values())) == 3


@pytest.mark.parametrize("model", ["engine", "gemma_engine"])
def test_a_prompt_after_another_gives_the_logits_of_a_fresh_context(request, model):
    """Drafting may reuse a snapshot of the prompt prefix two prompts share (llama.Context.start)
    only where that is exact: the logits must not depend on what the context decoded before.
    Prompts past 64 tokens: on some CPUs larger batches take other kernels (AMX Xeon)."""
    engine = request.getfixturevalue(model)
    first, second = (prompt_tokens(engine, " ".join(order)) for order in (ARTICLES, ARTICLES[::-1]))
    assert min(len(first), len(second)) > 100
    fresh = Context(engine.model, [], n_ctx=1024)
    reused = Context(engine.model, [], n_ctx=1024)
    try:
        fresh.decode(fresh.start(second))
        for prompt in (first, second):
            reused.decode(reused.start(prompt))
        assert np.array_equal(reused.logits(), fresh.logits())
    finally:
        fresh.close()
        reused.close()
