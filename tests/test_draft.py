"""`cope draft` and `cope accept` end to end: store, adapters, engine, feedback into history."""

import json

import pytest
from conftest import register_adapters

from cope_local.home import ensure_home
from cope_local.store.database import Store

ARTICLE = "text=The city council voted on Tuesday to build protected bike lanes on Main Street."


@pytest.fixture
def person(cope, cope_home, tmp_path):
    (tmp_path / "h.csv").write_text("text,title\nRain all week,Soggy Days Ahead\n")
    assert cope("import", tmp_path / "h.csv", "-p", "ann").exit_code == 0
    return "ann"


def with_adapters(cope_home, lora_files, person):
    with Store.open(ensure_home(cope_home)) as store:
        register_adapters(store, store.profile_id(person), "headline", lora_files)


def test_draft_without_adapters_says_so_and_uses_the_base(cope, person):
    result = cope("draft", "-t", "headline", "-p", person, "--json", ARTICLE)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["method"] == "base" and out["text"]
    assert "no adapter trained on your writing yet" in result.stderr
    assert set(out) >= {"text", "tokens", "method", "params", "tok_s"}


def test_cope_draft_with_adapters_reports_each_token(cope, cope_home, person, lora_files):
    with_adapters(cope_home, lora_files, person)
    out = json.loads(cope("draft", "-t", "headline", "-p", person, "--json", ARTICLE).stdout)
    assert out["method"] == "cope"
    assert out["params"]["alpha"] == 0.3 and out["params"]["tau"] == 0.1 and out["params"]["max_tokens"] == 100
    assert all(t["head_size"] >= 1 for t in out["tokens"])
    assert "".join(t["text"] for t in out["tokens"]).strip() == out["text"]
    oppu = json.loads(cope("draft", "-t", "headline", "-p", person, "-m", "oppu", "--json", ARTICLE).stdout)
    assert oppu["method"] == "oppu" and all(t["head_size"] is None for t in oppu["tokens"])


def test_cope_without_contrast_is_the_user_adapter_alone(cope, cope_home, person, lora_files):
    """α = 0 (tuning may choose it): one context, the very tokens OPPU+DPO drafts."""
    with_adapters(cope_home, lora_files, person)
    result = cope("draft", "-t", "headline", "-p", person, "--alpha", "0", "--max-tokens", "12", "--json", ARTICLE)
    out = json.loads(result.stdout)
    dpo = json.loads(cope("draft", "-t", "headline", "-p", person, "-m", "oppu_dpo", "--max-tokens", "12", "--json",
                          ARTICLE).stdout)
    assert out["method"] == "cope" and "no contrast" in result.stderr
    assert all(t["head_size"] is None for t in out["tokens"])
    assert [t["id"] for t in out["tokens"]] == [t["id"] for t in dpo["tokens"]]


def test_adapter_for_another_base_model_is_not_used(cope, cope_home, person, lora_files):
    with_adapters(cope_home, lora_files, person)
    with Store.open(ensure_home(cope_home)) as store:
        store.conn.execute("UPDATE adapters SET base_fingerprint = 'other'")
        store.conn.commit()
    result = cope("draft", "-t", "headline", "-p", person, "--json", ARTICLE)
    assert json.loads(result.stdout)["method"] == "base"
    assert "trained for another base model" in result.stderr


def test_plain_output_streams_text_and_the_draft_can_be_accepted(cope, cope_home, person):
    result = cope("draft", "-t", "headline", "-p", person, "--max-tokens", "12", ARTICLE)
    assert result.exit_code == 0
    assert result.stdout.strip()
    draft_id = int(result.stderr.split("draft #")[1].split(":")[0])
    assert cope("accept", draft_id, "--text", "Bike Lanes Are Coming").exit_code == 0
    history = json.loads(cope("history", "-p", person, "--json").stdout)
    accepted = [h for h in history if h["origin"] == "draft"]
    assert [h["output"] for h in accepted] == ["Bike Lanes Are Coming"]
    assert accepted[0]["inputs"]["text"].startswith("The city council")


def test_bad_draft_input(cope, person):
    result = cope("draft", "-t", "headline", "-p", person, "text=   ")
    assert result.exit_code == 1 and "needs text" in result.stderr
    result = cope("draft", "-t", "review", "-p", person, "just text")
    assert result.exit_code == 1 and "FIELD=VALUE" in result.stderr
    result = cope("draft", "-t", "headline", "-p", "nobody", ARTICLE)
    assert result.exit_code == 1 and "cope import PATH --profile nobody" in result.stderr


def test_an_input_longer_than_the_context_is_shortened(cope, person):
    long_article = "text=" + "The council met again and talked about the budget for a long time. " * 400
    result = cope("draft", "-t", "headline", "-p", person, "--max-tokens", "8", "--json", long_article)
    assert result.exit_code == 0, result.output
    assert "was too long for the model's context and was shortened" in result.stderr


def test_the_long_form_penalty_applies_to_every_method_alike(cope, person):
    """Issue 13: baselines and CoPe are decoded under one repetition-penalty rule (on log p)."""
    out = json.loads(cope("draft", "-t", "post", "-p", person, "-m", "base", "--max-tokens", "4", "--json", "My bike").stdout)
    assert out["params"]["penalty"] == 7.0 and out["params"]["alpha"] == 0.1 and out["method"] == "base"
    out = json.loads(cope("draft", "-t", "post", "-p", person, "-m", "base", "--penalty", "1.3", "--max-tokens", "4", "--json", "My bike").stdout)
    assert out["params"]["penalty"] == 1.3
