"""Your edits teach it: edited and rejected drafts become preference pairs (chosen: what you kept;
rejected: what was proposed), kept encrypted with your history, exported, forgotten, and learned
from by the next retrain's DPO."""

import json

import pytest

from cope_local.errors import CopeError
from cope_local.home import ensure_home
from cope_local.jobs import privacy
from cope_local.store import drafts
from cope_local.store.database import Store

PARAMS = {"alpha": 0.3}


def person(store, name="ann"):
    with store.transaction():
        return store.ensure_profile(name)


def draft(store, person, text, article="An article about rain.", adapter=None):
    return drafts.add(store, person, "headline", {"text": article}, "cope", PARAMS, text, adapter)


def test_edited_and_rejected_drafts_become_pairs_with_the_right_sides(tmp_path):
    with Store.open(ensure_home(tmp_path)) as store:
        ann = person(store)
        as_drafted = draft(store, ann, "Rain Again", "Kept as drafted.")
        edited = draft(store, ann, "It Rains, Again And Again", "Edited.")
        turned_down = draft(store, ann, "Weather Happens", "Rejected, then another kept.")
        then_kept = draft(store, ann, "Storm Warning For Tonight", "Rejected, then another kept.")
        alone = draft(store, ann, "Clouds", "Rejected, nothing kept.")
        drafts.accept(store, as_drafted)
        drafts.accept(store, edited, "Rain, Again")
        drafts.reject(store, turned_down)
        drafts.accept(store, then_kept)
        drafts.reject(store, alone)
        pairs = drafts.preference_pairs(store, ann, "headline")
        assert [(p["inputs"]["text"], p["chosen"], p["rejected"]) for p in pairs] == [
            ("Rejected, then another kept.", "Storm Warning For Tonight", "Weather Happens"),
            ("Edited.", "Rain, Again", "It Rains, Again And Again")]
        assert [d["outcome"] for d in drafts.of_profile(store, ann)] == ["accepted", "edited", "rejected", "accepted", "rejected"]
        with pytest.raises(CopeError, match="was accepted"):
            drafts.reject(store, as_drafted)
        assert drafts.preference_pairs(store, ann, "post") == []


def test_a_rejected_draft_pairs_with_the_persons_own_writing_for_the_same_inputs(tmp_path):
    with Store.open(ensure_home(tmp_path)) as store:
        ann = person(store)
        drafts.reject(store, draft(store, ann, "Generic Headline", "Rain all week"))
        assert drafts.preference_pairs(store, ann, "headline") == []
        with store.transaction():
            store.add_writing(ann, "headline", {"text": "Rain all week"}, "Soggy Days Ahead")
        [pair] = drafts.preference_pairs(store, ann, "headline")
        assert (pair["chosen"], pair["rejected"]) == ("Soggy Days Ahead", "Generic Headline")


def test_cope_reject_and_a_forgotten_profile_leaves_no_pairs(cope, cope_home, tmp_path):
    (tmp_path / "h.csv").write_text("text,title\nRain all week,Soggy Days Ahead\n")
    assert cope("import", tmp_path / "h.csv", "-p", "ann").exit_code == 0
    with Store.open(ensure_home(cope_home)) as store:
        ann = store.profile_id("ann")
        first = draft(store, ann, "Weather Update", "Rain all week")
        second = draft(store, ann, "It Rains", "Rain all week")
    assert cope("reject", first).exit_code == 0
    assert cope("accept", second, "--text", "Soggy Days Ahead, Again").exit_code == 0
    out = tmp_path / "ann.json"
    assert cope("export", out, "-p", "ann").exit_code == 0
    exported = json.loads(out.read_text())["profiles"][0]["drafts"]
    assert [d["outcome"] for d in exported] == ["rejected", "edited"]
    with Store.open(ensure_home(cope_home)) as store:
        assert len(drafts.preference_pairs(store, store.profile_id("ann"), "headline")) == 2
        privacy.forget(store, "ann")
        assert store.conn.execute("SELECT count(*) FROM drafts").fetchone()[0] == 0
    assert "no draft #1" in cope("reject", first).output


def test_the_share_of_real_pairs_is_capped_and_held_out_inputs_are_never_trained_on():
    pytest.importorskip("torch")
    from trainer.real_pairs import chosen_for_training

    pairs = [{"inputs": {"text": f"t{i}"}, "chosen": "c", "rejected": "r"} for i in range(10)]  # newest first
    assert len(chosen_for_training(pairs, synthetic=4, share=0.5, held_out=[])) == 4  # half of 8
    assert chosen_for_training(pairs, synthetic=4, share=0.2, held_out=[]) == pairs[:1]
    assert chosen_for_training(pairs, synthetic=0, share=1.0, held_out=[{"text": "t0"}]) == pairs[1:]
