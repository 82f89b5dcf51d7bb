"""`cope eval` on a small LaMP-layout fixture written here: protocol, metrics, outputs, resume."""

import json
import mmap

import pytest

from cope_local.errors import CopeError
from cope_local.evaluation import load, paired_bootstrap, per_user_table, rouge, split, summarise, text_chart
from cope_local.tasks import get_task

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
    test, others = split(questions, 2)
    assert [q.user for q in test] == ["writer3", "writer2"]  # the longest histories
    assert len(others) == 2


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
    tam_line, cope_line = text_chart(summary, {"tam": "TAM", "cope": "CoPe"}, width=31).splitlines()
    assert tam_line.count("█") == 20 and cope_line.count("█") == 30  # one scale: 0.2 vs 0.3
    assert cope_line.endswith("0.300")


def test_the_per_user_table_numbers_users_by_rank_and_shows_what_tuning_chose():
    """Shard 1/2's users are the run's 2nd and 4th; extra questions ("<id>/h<i>") count for their
    user; α = 0 (no contrast) reads "0"; an untuned method has no settings."""
    tuned = {"lr": 1e-4, "alpha": 0.3, "tau": 0.1}
    rows = [{"key": "a", "method": "tam", "rougeL": 0.1}, {"key": "a/h0", "method": "tam", "rougeL": 0.2},
            {"key": "a", "method": "cope", "rougeL": 0.3, "tuned": tuned}, {"key": "a/h0", "method": "cope", "rougeL": 0.4, "tuned": tuned},
            {"key": "b", "method": "tam", "rougeL": 0.05}, {"key": "b", "method": "cope", "rougeL": 0.05,
                                                            "tuned": {"lr": 3e-4, "alpha": 0.0, "tau": 0.1}}]
    assert per_user_table(rows, ["a", "b"], (1, 2), {"tam": "TAM", "cope": "CoPe"}).splitlines() == [
        "| user | TAM | CoPe | SFT lr | α/τ |", "|---|---|---|---|---|",
        "| 2 | .150 | .350 | 1e-4 | 0.3/0.1 |", "| 4 | .050 | .050 | 3e-4 | 0 |"]
    assert per_user_table(rows[:2], ["a"], (0, 1), {}).splitlines()[2] == "| 1 | .150 |"


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
    from cope_local.bench import train

    result = train.run(write_lamp(tmp_path / "lamp", users=2, items=10), items=8, trl_steps=1, speed_only=True)
    assert result["sft_speed"]["ours"]["tokens_per_s"] > 0 and result["sft_speed"]["trl_sft_defaults"]["steps"] == 1


def test_bench_train_peaks_per_stage():
    """Each stage's peak RSS is its own: memory a stage freed does not count against the next."""
    from cope_local.bench.train import StagePeaks, restart_peak
    from cope_local.progress import Progress

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
    from cope_local.models import add, inspect
    from cope_local.store import Store

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
