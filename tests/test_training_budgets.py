"""Training sees exactly what drafting sees: prompts fitted inside the input field, whole
responses up to the drafting limit, negatives to K, and eval planned as `cope draft` plans."""

import json

import numpy as np
import pytest

pytest.importorskip("transformers")

from conftest import register_adapters  # noqa: E402

from cope_local.drafting.methods import Adapters  # noqa: E402
from cope_local.drafting.prompts import prompt_budget, prompt_tokens  # noqa: E402
from cope_local.drafting.settings import for_family  # noqa: E402
from cope_local.drafting.tasks import get_task  # noqa: E402
from cope_local.engine.engine import Engine  # noqa: E402
from cope_local.engine.llama import CONTEXT_TOKENS  # noqa: E402
from cope_local.eval.data import Question  # noqa: E402
from cope_local.gguf.header import read_header  # noqa: E402
from cope_local.home import ensure_home  # noqa: E402
from cope_local.jobs.bench_fixtures import ARTICLES  # noqa: E402
from cope_local.store.database import Store  # noqa: E402
from cope_local.store.models import embedded_model_path  # noqa: E402
from trainer import data, negatives  # noqa: E402
from trainer.data import Encoder, by_tokens  # noqa: E402
from trainer.loading import load_tokenizer  # noqa: E402

HEADLINE, EMAIL = get_task("headline"), get_task("email")


@pytest.fixture(scope="module")
def encoder():
    path = embedded_model_path()
    return Encoder(load_tokenizer(path), read_header(path).metadata.get("tokenizer.chat_template"))


def words(n):
    return " ".join(f"word{i % 97}" for i in range(n))


def test_a_response_is_whole_up_to_the_drafting_limit_and_never_cut_with_an_end_token(encoder):
    short = encoder.response_ids(EMAIL, "A short body.")
    assert short[-len(encoder.end_ids):] == encoder.end_ids
    long = encoder.response_ids(EMAIL, words(2000))
    assert len(long) == data.limit(EMAIL) == 600
    assert long[-len(encoder.end_ids):] != encoder.end_ids  # no false stop where the text goes on
    assert encoder.response_ids(HEADLINE, words(400))[-1] not in encoder.end_ids and data.limit(HEADLINE) == 100


def test_the_instruction_survives_and_training_cuts_the_prompt_exactly_as_drafting(encoder, engine):
    for article in (ARTICLES[0], words(5000)):
        inputs = {"text": article}
        trained = encoder.prompt_ids(HEADLINE, inputs)
        drafted = prompt_tokens(engine, HEADLINE, inputs, data.limit(HEADLINE), [])
        assert trained == drafted
        assert len(trained) <= prompt_budget(data.limit(HEADLINE))
        text = encoder.tokenizer.decode(trained)
        assert HEADLINE.system in text and "Generate a headline for the following article." in text
        assert text.rstrip().endswith("assistant")
    example = encoder.example(EMAIL, {"subject": "Fix the thing"}, words(3000))
    assert len(example.prompt_ids) + len(example.response_ids) <= CONTEXT_TOKENS


def test_batches_are_split_into_micro_batches_by_padded_tokens():
    items = [data.Example([1] * 10, [2] * n) for n in (10, 10, 500, 3000)]
    groups = by_tokens(items, 1024)
    assert [len(g) for g in groups] == [2, 1, 1]  # 2 × 20 tokens; 3 × 510 would pass 1024; 3010 alone
    assert sum(groups, []) == items


def _prompts(engine, count):
    return [prompt_tokens(engine, HEADLINE, {"text": article}, 8, []) for article in ARTICLES[:count]]


def test_negatives_are_sampled_again_until_k_distinct(monkeypatch, engine):
    """The first round's samples come back duplicated (as a peaked π_base does): a second round
    must fill every item up to K distinct texts."""
    real = negatives.sample_continuations
    rounds = []

    def duplicated_first_round(ctx, prompts, k, limits, sampling, rng, finished):
        rounds.append(len(prompts))
        first = len(rounds) == 1
        return real(ctx, prompts, k, limits, sampling, rng, finished=lambda j, drawn: finished(j, [drawn[0]] * k if first else drawn))

    monkeypatch.setattr(negatives, "sample_continuations", duplicated_first_round)
    texts = negatives.sample(embedded_model_path(), None, None, _prompts(engine, 3), 8, False, 1, np.random.default_rng(0),
                             negatives.Remembered(None), lambda p: None)
    assert len(rounds) >= 2 and all(len(found) == negatives.K == len(set(found)) for found in texts)


def test_negatives_already_drawn_from_this_base_are_not_sampled_again(monkeypatch, engine, tmp_path):
    """A nightly retrain samples only what it has not sampled before from the same π_base."""
    sampled = []
    real = negatives.sample_continuations
    monkeypatch.setattr(negatives, "sample_continuations",
                        lambda ctx, prompts, *rest, **kw: sampled.append(len(prompts)) or real(ctx, prompts, *rest, **kw))
    prompts = _prompts(engine, 3)
    file = negatives.remembered_file(tmp_path, embedded_model_path(), None, 8, False)

    def draw(count):
        return negatives.sample(embedded_model_path(), None, None, prompts[:count], 8, False, 1, np.random.default_rng(0),
                                negatives.Remembered(file), lambda p: None)

    first = draw(2)
    assert sampled == [2]
    again = draw(3)  # one new item
    assert sampled == [2, 1] and again[:2] == first and len(again[2]) == negatives.K
    with file.open("a") as handle:
        handle.write('{"key": "cut sho')  # a line cut by a kill
    assert draw(3) == again and sampled == [2, 1]
    assert file != negatives.remembered_file(tmp_path, embedded_model_path(), None, 9, False)  # another limit: another file
    assert file != negatives.remembered_file(tmp_path, embedded_model_path(), None, 8, True)  # another line rule too


def test_negatives_of_a_one_line_task_end_at_the_first_line(engine):
    """Negatives are what π_base would draft: for a headline, its first line."""
    def draw(one_line):
        return negatives.sample(embedded_model_path(), None, None, _prompts(engine, 4), 60, one_line, 1,
                                np.random.default_rng(0), negatives.Remembered(None), lambda p: None)

    assert any("\n" in text for found in draw(False) for text in found)  # whole samples do run on
    texts = draw(True)
    assert all(found and all(text and "\n" not in text for text in found) for found in texts)


@pytest.mark.slow
def test_eval_plans_and_prompts_exactly_as_cope_draft(cope, cope_home, tmp_path, lora_files):
    """Same method, inputs and adapters: `cope eval`'s answer is the text `cope draft` writes."""
    from trainer.eval.user import answer

    (tmp_path / "h.csv").write_text("text,title\nRain all week,Soggy Days Ahead\n")
    assert cope("import", tmp_path / "h.csv", "-p", "ann").exit_code == 0
    with Store.open(ensure_home(cope_home)) as store:
        register_adapters(store, store.profile_id("ann"), "headline", lora_files)
    adapters = Adapters(lora_files["tam"], lora_files["user"], lora_files["user"])
    case = Question("q1", "u", {"text": ARTICLES[1]}, "gold", [])
    with Engine(embedded_model_path()) as engine:
        for method in ("cope", "oppu_dpo", "tam", "base"):
            drafted = json.loads(cope("draft", "-t", "headline", "-p", "ann", "-m", method, "--json", f"text={ARTICLES[1]}").stdout)
            assert drafted["method"] == method
            assert answer(engine, HEADLINE, method, case, [], adapters) == drafted["text"], method


def test_the_same_penalty_rule_for_every_method():
    long_form = for_family("longlamp")
    assert long_form.penalty == 7.0 and for_family("lamp").penalty == 1.0
    assert np.isclose(long_form.alpha, 0.1)


def test_long_form_drafts_have_a_minimum_length_from_the_persons_typical_length():
    assert for_family("longlamp", typical=100).min_tokens == 70
    assert for_family("longlamp", typical=5000).min_tokens == 300  # half the drafting limit at most
    assert for_family("longlamp").min_tokens == 0  # no history yet
    assert for_family("lamp", typical=20).min_tokens == 0
    assert for_family("longlamp").no_repeat == 4 and for_family("lamp").no_repeat == 0


def test_decoding_settings_are_frozen_and_refuse_an_unknown_override():
    from cope_local.errors import CopeError

    settings = for_family("lamp", tuned={"alpha": 0.5, "tau": 0.3}, max_tokens=12, temperature=None)
    assert (settings.alpha, settings.tau, settings.max_tokens, settings.temperature) == (0.5, 0.3, 12, 0.0)
    with pytest.raises(CopeError, match="unknown decoding setting alhpa"):
        for_family("lamp", alhpa=0.2)
    with pytest.raises(AttributeError):
        settings.alpha = 1.0


def test_a_base_the_exporter_cannot_handle_is_refused_before_training(tmp_path):
    from test_models import tiny_gguf

    from cope_local.errors import CopeError
    from trainer.stages import BaseTrainer

    with pytest.raises(CopeError, match="architecture 'bert'.*") as refused:
        BaseTrainer(tiny_gguf(tmp_path / "bert.gguf", "bert"))
    assert "gemma3" in refused.value.hint and "llama" in refused.value.hint
