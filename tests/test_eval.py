"""`cope eval` on a small LaMP-layout fixture written here: protocol, metrics, outputs, resume."""

import json
import mmap

import pytest

from cope_local.drafting.tasks import get_task
from cope_local.errors import CopeError
from cope_local.eval.data import load
from cope_local.eval.metrics import paired_bootstrap, rouge
from cope_local.eval.protocol import Settings, history_and_cases, ranks, split
from cope_local.eval.reports import per_user_table, summarise, text_chart

WORDS = ["council", "bikes", "rain", "bakery", "museum", "eggs", "robot", "library", "bridge", "owls", "zoo", "market"]


def write_lamp(folder, users=4, items=10):
    folder.mkdir()
    questions, golds = [], []
    for u in range(users):
        profile = [{"id": f"u{u}p{i}", "text": f"Story {i} about the {WORDS[(u + i) % 12]} in town {u}.",
                    "title": f"The {WORDS[(u + i) % 12].title()} Story Number {i}", "date": f"2020-01-{i + 1:02d}"}
                   for i in range(items + u)]
        questions.append({"id": f"q{u}", "user": f"writer{u}", "profile": profile,
                          "input": f"Generate a headline for the following article: News about the {WORDS[u]} today."})
        golds.append({"id": f"q{u}", "output": f"The {WORDS[u].title()} Story Today"})
    (folder / "questions.json").write_text(json.dumps(questions))
    (folder / "outputs.json").write_text(json.dumps({"task": "LaMP_4", "golds": golds}))
    return folder


def test_load_and_the_test_user_split(tmp_path):
    task, questions = load(write_lamp(tmp_path / "lamp"))
    assert task.name == "headline"
    assert questions[0].inputs == {"text": "News about the council today."}
    assert questions[0].gold == "The Council Story Today"
    test, others = split(questions, Settings(users=2))
    assert [q.user for q in test] == ["writer3", "writer2"]  # the longest histories
    assert len(others) == 2


def test_folds_and_skip_choose_the_test_users_and_everyone_else_trains_the_tam(tmp_path):
    """--skip leaves out an earlier run's users; fold k/n tests every n-th of the rest from k, and
    the other folds' users (and the skipped ones) are the TAM's corpus."""
    _, questions = load(write_lamp(tmp_path / "lamp"))  # writer3, writer2, writer1, writer0 by length
    test, others = split(questions, Settings(users=3, skip=1, fold=(1, 2)))
    assert [q.user for q in test] == ["writer1"] and [q.user for q in others] == ["writer3", "writer2", "writer0"]
    test, others = split(questions, Settings(users=3, skip=1, fold=(0, 2)))
    assert [q.user for q in test] == ["writer2", "writer0"] and [q.user for q in others] == ["writer3", "writer1"]
    assert ranks(["b", "d"], {"skip": 1, "fold": [0, 2], "shard": [0, 1]}) == {"b": 2, "d": 4}


def test_malformed_eval_data_is_named(tmp_path):
    folder = write_lamp(tmp_path / "lamp")
    outputs = json.loads((folder / "outputs.json").read_text())
    outputs["golds"].pop()
    (folder / "outputs.json").write_text(json.dumps(outputs))
    with pytest.raises(CopeError, match="question 'q3' has no gold output"):
        load(folder)
    questions = json.loads((folder / "questions.json").read_text())
    questions[0]["profile"][2] = {"id": "x", "text": "no title here"}
    (folder / "questions.json").write_text(json.dumps(questions))
    with pytest.raises(CopeError, match="profile item 2 lacks title"):
        load(folder, get_task("headline"))


def test_rouge_and_bootstrap():
    r1, rl = rouge("The Council Story", "the council story today")
    assert r1 == pytest.approx(6 / 7) and rl == pytest.approx(6 / 7)
    mean, low, high = paired_bootstrap([0.5, 0.6, 0.7, 0.8], [0.4, 0.5, 0.6, 0.7])
    assert mean == pytest.approx(0.1) and low == pytest.approx(0.1) and high == pytest.approx(0.1)
    rows = [{"key": k, "method": m, "rouge1": v, "rougeL": v} for k in "abc" for m, v in (("tam", 0.2), ("cope", 0.3))]
    summary = summarise(rows, ["tam", "cope"])
    assert summary["cope"]["vs_tam"]["diff"] == pytest.approx(0.1)
    assert summary["cope"]["vs_tam"]["by_user"]["diff"] == pytest.approx(0.1)
    tam_line, cope_line = text_chart(summary, {"tam": "TAM", "cope": "CoPe"}, width=31).splitlines()
    assert tam_line.count("█") == 20 and cope_line.count("█") == 30  # one scale: 0.2 vs 0.3
    assert cope_line.endswith("0.300")


def test_one_user_carrying_the_whole_gain_is_not_significant_by_user():
    """Ten users, five questions each; one user gains .5 on every question, the others nothing
    (±.01). Resampling questions puts the gain beyond noise; resampling users, as the adapters
    are per user, does not, and the Wilcoxon test on per-user means does not either."""
    rows = []
    for user in range(10):
        for question in range(5):
            key = str(user) if question == 0 else f"{user}/h{question - 1}"
            gain = 0.5 if user == 0 else (0.01 if (user + question) % 2 else -0.01)
            rows += [{"key": key, "method": "tam", "rouge1": 0.2, "rougeL": 0.2},
                     {"key": key, "method": "cope", "rouge1": 0.2, "rougeL": 0.2 + gain}]
    versus = summarise(rows, ["tam", "cope"], [str(u) for u in range(10)])["cope"]["vs_tam"]
    assert versus["ci95"][0] > 0  # by question: "significant"
    by_user = versus["by_user"]
    assert by_user["users"] == 10 and by_user["ci95"][0] < 0 < by_user["ci95"][1]
    assert by_user["diff"] == pytest.approx(versus["diff"]) and by_user["wilcoxon_p"] > 0.05


def test_wilcoxon_signed_rank_matches_the_exact_distribution():
    from cope_local.eval.metrics import wilcoxon_signed_rank

    assert wilcoxon_signed_rank([1, 2, 3, 4, 5]) == pytest.approx(2 / 32)  # all 32 sign patterns, two-sided
    assert wilcoxon_signed_rank([1, -2, 3, -4, 5, 6, 7, -8, 9, 10]) == pytest.approx(0.193359375)  # W- = 14
    assert wilcoxon_signed_rank([0.0, 0.0]) == 1.0


def test_the_per_user_table_numbers_users_by_rank_and_shows_what_tuning_chose():
    """Shard 1/2's users are the run's 2nd and 4th; extra questions ("<id>/h<i>") count for their
    user; α = 0 (no contrast) reads "0"; an untuned method has no settings."""
    tuned = {"lr": 1e-4, "alpha": 0.3, "tau": 0.1}
    rows = [{"key": "a", "method": "tam", "rougeL": 0.1}, {"key": "a/h0", "method": "tam", "rougeL": 0.2},
            {"key": "a", "method": "cope", "rougeL": 0.3, "tuned": tuned}, {"key": "a/h0", "method": "cope", "rougeL": 0.4, "tuned": tuned},
            {"key": "b", "method": "tam", "rougeL": 0.05}, {"key": "b", "method": "cope", "rougeL": 0.05,
                                                            "tuned": {"lr": 3e-4, "alpha": 0.0, "tau": 0.1}}]
    assert per_user_table(rows, ranks(["a", "b"], {"shard": [1, 2]}), {"tam": "TAM", "cope": "CoPe"}).splitlines() == [
        "| user | TAM | CoPe | SFT lr | α/τ |", "|---|---|---|---|---|",
        "| 2 | .150 | .350 | 1e-4 | 0.3/0.1 |", "| 4 | .050 | .050 | 3e-4 | 0 |"]
    assert per_user_table(rows[:2], ranks(["a"], {"shard": [0, 1]}), {}).splitlines()[2] == "| 1 | .150 |"


def test_progress_in_a_log_is_a_line_per_stage_and_per_finish(capsys):
    """Redirected to a file (no terminal), an hours-long eval or retrain still shows where it is."""
    from cope_local.cli.common import StageProgress
    from cope_local.progress import Progress

    with StageProgress() as progress:
        assert not progress.live
        for step in range(4):
            progress.update(Progress("sft", step, 3, loss=1.0))
        progress.update(Progress("users", 0, 2))
        progress.update(Progress("users", 2, 2))
    lines = [line.split(" ", 1)[1] for line in capsys.readouterr().err.splitlines()]
    assert lines == ["sft 0/3 loss 1.000", "sft 3/3 loss 1.000", "users 0/2", "users 2/2"]


@pytest.mark.slow
def test_cope_eval_end_to_end_and_resume(cope, tmp_path):
    data = write_lamp(tmp_path / "lamp")
    out = tmp_path / "out"
    args = ["eval", "--data", data, "--users", "1", "--questions-per-user", "2", "--epochs", "1",
            "--methods", "base,rag,pag,tam,oppu,cope", "--out", out]
    result = cope(*args)
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    assert set(saved["summary"]) == {"base", "rag", "pag", "tam", "oppu", "cope"}
    assert all(entry["n"] == 2 for entry in saved["summary"].values())
    assert "vs_tam" in saved["summary"]["cope"] and "vs_oppu" in saved["summary"]["cope"]
    assert {q["id"] for q in saved["questions"]} == {"q3", "q3/h0"}
    report = (out / "results.md").read_text()
    assert "| CoPe (DPO+CD) |" in report and "| user | Base | RAG" in report and "\n| 1 | " in report
    assert report in result.output
    assert (out / "rougeL.png").stat().st_size > 1000
    before = (out / "predictions.jsonl").read_text()
    assert cope(*args).exit_code == 0  # a rerun reuses adapters and predictions
    assert (out / "predictions.jsonl").read_text() == before


@pytest.mark.slow
def test_bench_train_speed_comparison_runs(tmp_path, cope_home):
    """`cope bench train --speed-only` end to end on a tiny LaMP folder (our SFT loop vs TRL's)."""
    from trainer import bench_train as train

    result = train.run(write_lamp(tmp_path / "lamp", users=2, items=10), items=8, trl_steps=1, speed_only=True)
    assert result["sft_speed"]["ours"]["tokens_per_s"] > 0 and result["sft_speed"]["trl_sft_defaults"]["steps"] == 1


def test_bench_train_peaks_per_stage():
    """Each stage's peak RSS is its own: memory a stage freed does not count against the next."""
    from cope_local.progress import Progress
    from trainer.bench_train import StagePeaks, restart_peak

    if not restart_peak():
        pytest.skip("the peak counter cannot be restarted here (Linux only)")
    peaks = StagePeaks()
    peaks(Progress("tam", 1, 2))
    block = mmap.mmap(-1, 200 << 20)  # fresh pages (malloc may reuse memory this process freed)
    for page in range(0, len(block), mmap.PAGESIZE):
        block[page] = 1  # resident while the TAM stage runs
    block.close()
    peaks(Progress("sft", 1, 2))
    peaks(Progress("sft", 2, 2))
    peaks.close()
    assert list(peaks.peaks) == ["load", "tam", "sft"]
    assert peaks.peaks["tam"] > peaks.peaks["sft"] + (150 << 20)


def test_eval_on_another_model_resumes_on_it_and_refuses_a_switch(cope, cope_home, gemma_path, tmp_path):
    """`--model` drafts with a model from `cope models`; the run remembers it, so a rerun without
    the flag resumes on it, and answers of one model are never mixed with another's."""
    from cope_local.home import ensure_home
    from cope_local.store.database import Store
    from cope_local.store.models import add, inspect

    with Store.open(ensure_home(cope_home)) as store:
        add(store, gemma_path, "gemma3-270m")
    data = write_lamp(tmp_path / "lamp")
    out = tmp_path / "out"
    args = ["eval", "--data", data, "--users", "1", "--methods", "base", "--out", out]
    assert cope(*args, "--model", "gemma3-270m").exit_code == 0
    assert json.loads((out / "results.json").read_text())["model"] == inspect(gemma_path).fingerprint
    before = (out / "predictions.jsonl").read_text()
    assert cope(*args).exit_code == 0 and (out / "predictions.jsonl").read_text() == before
    refused = cope(*args, "--model", "smollm2-135m")
    assert refused.exit_code == 1 and "drafted with gemma3-270m" in refused.stderr and "another --out" in refused.stderr


def test_the_simulated_rewriter_never_trains_on_a_test_item_and_spares_what_tuning_holds_out(tmp_path):
    """--edits: night 1 sees only items older than the edits; the test questions are in no night;
    the items tuning holds out of night 2 are not among the edits (their pairs would be unused)."""
    pytest.importorskip("torch")
    from trainer import tuning
    from trainer.eval.edits import plan

    _, questions = load(write_lamp(tmp_path / "lamp", users=1, items=40))
    settings = Settings(users=1, questions_per_user=5, edits=6, tune=True)
    history, cases = history_and_cases(questions[0], settings)
    older, edited, newer = plan(history, settings)
    assert older + edited + newer == history and len(edited) == 6
    assert [i for i, _, _ in newer] == [i for i, _, _ in reversed(tuning.split(list(reversed(history)))[1])]
    assert max(date for *_, date in older) < min(date for *_, date in edited)
    tested = {json.dumps(case.inputs, sort_keys=True) for case in cases}
    assert not tested & {json.dumps(inputs, sort_keys=True) for inputs, _, _ in history}
    with pytest.raises(CopeError, match="no history for the first night"):
        plan(history[:8], Settings(edits=6, tune=True))


@pytest.mark.slow
def test_cope_eval_with_edits_learns_from_the_rewritten_drafts(cope, tmp_path):
    from cope_local.home import ensure_home
    from cope_local.store import adapter_registry, drafts
    from cope_local.store.database import Store

    out = tmp_path / "out"
    result = cope("eval", "--data", write_lamp(tmp_path / "lamp"), "--users", "1", "--questions-per-user", "2", "--epochs",
                  "1", "--methods", "tam,cope", "--edits", "2", "--out", out)
    assert result.exit_code == 0, result.output
    with Store.open(ensure_home(out / "store")) as store:
        writer = store.profile_id("user:writer3")
        made = drafts.of_profile(store, writer)
        assert len(made) == 2 and {d["outcome"] for d in made} <= {"edited", "accepted"}
        night = adapter_registry.active(store, "headline", "user", writer)
        assert night.version == 2 and night.metrics["real_pairs"]["used"] == [d["outcome"] for d in made].count("edited")
