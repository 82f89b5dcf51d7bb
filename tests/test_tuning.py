"""Per-user tuning: the newest writing is held out, never trained on, and picks the grid point."""

import json

import numpy as np
import pytest

pytest.importorskip("peft")

from cope_local.home import ensure_home  # noqa: E402
from cope_local.store import adapter_registry  # noqa: E402
from cope_local.store.database import Store  # noqa: E402
from trainer import tuning  # noqa: E402
from trainer.pipeline import Job, Options  # noqa: E402
from trainer.stages import BaseTrainer  # noqa: E402


def test_the_newest_tenth_validates_and_at_least_three():
    rows = list(range(40))  # newest first, as the store lists history
    training, validation = tuning.split(rows)
    assert validation == [0, 1, 2, 3] and training == rows[4:]
    assert tuning.split(list(range(12))) == (list(range(3, 12)), [0, 1, 2])


def test_the_best_grid_point_wins_and_a_tie_keeps_the_default():
    assert tuning.best({1e-5: 0.10, 1e-4: 0.14, 3e-4: 0.12}, 1e-5) == 1e-4
    assert tuning.best({1e-5: 0.14, 1e-4: 0.14, 3e-4: 0.12}, 1e-4) == 1e-4
    assert tuning.best({(0.1, 0.1): 0.2, (0.3, 0.1): 0.2}, (0.5, 0.5)) == (0.1, 0.1)


def test_contrast_is_chosen_only_where_validation_shows_it_helps():
    grid = tuning.contrast_grid("lamp")  # headlines fall back to no contrast, then the least
    assert grid[0] == (0.0, 0.1) and grid[1:4] == [(0.1, 0.3), (0.1, 0.1), (0.1, 0.05)] and len(grid) == 13
    long_form = tuning.contrast_grid("longlamp")  # long-form to the paper's α, then the least
    assert long_form[:3] == [(0.1, 0.1), (0.0, 0.1), (0.1, 0.3)] and sorted(long_form) == sorted(grid)
    # (α, τ) → ROUGE-L of each of four validation items
    noisy = {(0.0, 0.1): [0.2, 0.1, 0.3, 0.2], (0.3, 0.1): [0.4, 0.0, 0.5, 0.0], (1.0, 0.05): [0.2, 0.2, 0.3, 0.2]}
    assert tuning.first_within_one_se(noisy) == (0.0, 0.1)  # the best mean, by less than its noise
    clear = {(0.0, 0.1): [0.2, 0.1, 0.3, 0.2], (0.3, 0.1): [0.3, 0.2, 0.4, 0.3], (1.0, 0.05): [0.35, 0.15, 0.45, 0.31]}
    assert tuning.first_within_one_se(clear) == (0.3, 0.1)  # within one error of the best, with less contrast
    assert tuning.first_within_one_se({(0.3, 0.1): [0.5]}) == (0.3, 0.1)


def test_the_contrast_grid_reports_each_item_and_stops_when_cancelled(lora_files):
    from cope_local.drafting.tasks import get_task
    from cope_local.progress import Cancelled
    from cope_local.store.models import embedded_model_path

    seen = []

    def report(progress):
        seen.append((progress.step, progress.total))
        if progress.step == 2:
            raise Cancelled("training cancelled")

    items = [({"text": f"The town did thing {i} today."}, f"Town Does Thing {i}") for i in range(3)]
    validator = tuning.Validator(embedded_model_path(), None, get_task("headline"), items, ["A Headline"], report)
    with pytest.raises(Cancelled):
        validator.contrast(lora_files["tam"], lora_files["user"])
    assert seen == [(0, 3), (1, 3), (2, 3)]


def test_agreement_is_the_drafting_rule_teacher_forced():
    """Every step picks as drafting picks: π_user's argmax (α = 0), CoPe's contrast inside the head
    (α > 0), end-of-text not before the minimum length, never an n-gram the text already holds."""
    from cope_local.drafting.settings import DecodingSettings

    end, is_end = 9, (lambda token: token == 9)
    users, bases = np.full((4, 10), -5.0), np.full((4, 10), -5.0)
    users[0, [1, 2]], bases[0, [1, 2]] = [3.0, 2.9], [4.0, 0.0]  # π_user barely prefers 1; π_base far more
    users[1, [end, 3]] = [5.0, 4.0]  # end-of-text first, but too early
    users[2, 1] = users[3, end] = 5.0
    plain = DecodingSettings(alpha=0.0, tau=0.1, penalty=1.0, max_tokens=10, min_tokens=3)
    assert tuning.agreement(users, bases, [2, 3, 1, end], plain, is_end) == 0.75  # only token 2 missed
    assert tuning.agreement(users, bases, [2, 3, 1, end], plain.but(alpha=0.5), is_end) == 1.0  # the contrast picks 2
    repeats = np.full((4, 10), -5.0)
    repeats[[0, 1, 2, 3], [2, 3, 2, 3]] = 5.0
    repeats[:, 4] = 4.0
    assert tuning.agreement(repeats, bases, [2, 3, 2, 3], plain.but(min_tokens=0), is_end) == 1.0
    assert tuning.agreement(repeats, bases, [2, 3, 2, 3], plain.but(min_tokens=0, no_repeat=2), is_end) == 0.75


def history(n, prefix="Desk"):
    return "text,title,date\n" + "".join(
        f"\"{prefix} story {i}: the town did thing {i} today.\",{prefix} Headline {i} Is Here,2024-01-{i + 1:02d}\n"
        for i in range(n))


@pytest.mark.slow
def test_tuned_training_never_sees_the_validation_items_and_drafting_uses_its_choice(cope, cope_home, tmp_path, monkeypatch):
    (tmp_path / "ann.csv").write_text(history(12, "Ann"))
    (tmp_path / "corpus.csv").write_text(history(12))
    assert cope("import", tmp_path / "ann.csv", "-p", "ann").exit_code == 0
    assert cope("import", tmp_path / "corpus.csv", "-p", "newsroom", "--corpus").exit_code == 0
    trained_on = []
    for stage in ("train_sft", "mine_negatives"):
        real = getattr(BaseTrainer, stage)

        def spy(self, model, task, rows, *args, _real=real, **kwargs):
            trained_on.extend(output for _, output in rows)
            return _real(self, model, task, rows, *args, **kwargs)

        monkeypatch.setattr(BaseTrainer, stage, spy)
    seen = []
    with Store.open(ensure_home(cope_home)) as store:
        [outcome] = Job(store, "ann", options=Options(epochs=1, tune=True), report=seen.append).run()
        assert outcome.status == "done", outcome.message
        reported = [(p.step, p.total) for p in seen if p.stage == "tuning"]  # each draft, then each item scored
        assert reported == [(i, 3) for i in range(4)] * len(tuning.LR_GRID) + [(i, 3) for i in range(4)]
        held_out = {w.output for w in store.writings(profile="ann")[:3]}  # the three newest
        assert held_out == {"Ann Headline 11 Is Here", "Ann Headline 10 Is Here", "Ann Headline 9 Is Here"}
        assert trained_on and not held_out & set(trained_on)
        chosen = outcome.metrics["tuning"]
        assert chosen["validation_items"] == 3 and chosen["lr"] in tuning.LR_GRID
        assert set(chosen["lr_rougeL"]) == {f"{lr:g}" for lr in tuning.LR_GRID}
        assert chosen["alpha"] in tuning.ALPHA_GRID and chosen["tau"] in tuning.TAU_GRID
        active = adapter_registry.active(store, "headline", "user", store.profile_id("ann"))
        assert active.metrics["tuning"] == chosen
    out = json.loads(cope("draft", "-t", "headline", "-p", "ann", "--max-tokens", "4", "--json", "text=A new bridge opens").stdout)
    assert (out["params"]["alpha"], out["params"]["tau"]) == (chosen["alpha"], chosen["tau"])
    assert f"alpha={chosen['alpha']:g}" in cope("adapters", "list", "-p", "ann").output
    monkeypatch.setattr(tuning, "RULE", "a later rule")
    with Store.open(ensure_home(cope_home)) as store:  # the same history, tuned under another rule
        [outcome] = Job(store, "ann", options=Options(epochs=1, tune=True)).run()
        assert outcome.status == "done" and outcome.version == active.version + 1
        assert outcome.metrics["resumed"] == ["sft", "negatives", "dpo"]  # only α and τ are chosen again
        assert outcome.metrics["tuning"]["rule"] == "a later rule" and outcome.metrics["tuning"]["lr"] == chosen["lr"]
        assert Job(store, "ann", options=Options(epochs=1, tune=True)).run()[0].status == "skipped"


@pytest.mark.slow
def test_a_cancelled_retrain_stops_keeps_the_active_adapter_and_says_so(cope, cope_home, tmp_path, lora_files):
    """Cancelled by the job's Cancel token (checked at its next report): no next task is started,
    the active adapter stays, the run row says cancelled (it used to go on to the next task)."""
    from conftest import register_adapters

    from cope_local.progress import Cancel, Cancelled

    (tmp_path / "ann.csv").write_text(history(10, "Ann"))
    assert cope("import", tmp_path / "ann.csv", "-p", "ann").exit_code == 0
    (tmp_path / "posts").mkdir()
    for i in range(8):
        (tmp_path / "posts" / f"{i}.md").write_text(f"# Post {i}\n\nA post body number {i}.")
    assert cope("import", tmp_path / "posts", "-p", "ann", "-t", "post").exit_code == 0

    cancel = Cancel()
    cancel.set()  # as the app's Cancel button does
    with Store.open(ensure_home(cope_home)) as store:
        ann = store.profile_id("ann")
        register_adapters(store, ann, "headline", {"user": lora_files["user"]})
        with pytest.raises(Cancelled):
            Job(store, "ann", options=Options(epochs=1), cancel=cancel).run(["headline", "post"])
        runs = store.training_runs()
        assert [r["task"] for r in runs] == ["headline"]  # the post task never started
        assert runs[0]["status"] == "failed" and runs[0]["message"].startswith("cancelled")
        assert adapter_registry.active(store, "headline", "user", ann).gguf_path == lora_files["user"]
