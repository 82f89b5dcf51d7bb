"""The eval suite beyond one run: one TAM shared by shards, `cope eval merge` equal to one
machine's run byte for byte, refusals that name the difference, and the Ray fan-out."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cope_local.errors import CopeError
from cope_local.eval.results import _interleave, merge

pytest.importorskip("transformers")

from test_eval import write_lamp  # noqa: E402

ARGS = ["--users", "3", "--questions-per-user", "2", "--methods", "base,tam", "--tam-items", "300"]


def test_shards_are_put_back_in_one_machine_order():
    assert _interleave([["a", "c", "e"], ["b", "d"]]) == ["a", "b", "c", "d", "e"]


def scores_of(folder: Path, fold: tuple, shard: tuple, users: list[str], tam: str, **changed) -> Path:
    """A shard's scores.json as `cope eval` writes it (TAM and CoPe answers, one question a user)."""
    settings = {"users": 4, "methods": ["tam", "cope"], "shard": list(shard), "fold": list(fold), "seed": 0, **changed}
    rows = [{"id": u, "method": m, "rouge1": v, "rougeL": v} for u in users for m, v in (("tam", 0.1), ("cope", 0.2))]
    folder.mkdir(parents=True)
    (folder / "scores.json").write_text(json.dumps({
        "data_fingerprint": "d", "task": "headline", "model": "m", "tams": [{"fold": list(fold), "fingerprints": [tam]}],
        "users": len(users), "test_questions": users, "settings": settings, "questions": rows}))
    return folder


def test_folds_merge_into_one_run_in_rank_order_naming_each_folds_tam(tmp_path):
    """Fold k/2 tests the users k, k+2 (by rank); shard i/2 of a fold every 2nd of those. The
    merge puts all back in rank order and names each fold's TAM, warning where one fold's shards
    used two."""
    parts = [scores_of(tmp_path / "f0s0", (0, 2), (0, 2), ["u1"], "tamA"), scores_of(tmp_path / "f0s1", (0, 2), (1, 2), ["u3"], "tamA"),
             scores_of(tmp_path / "f1s0", (1, 2), (0, 2), ["u2"], "tamB"), scores_of(tmp_path / "f1s1", (1, 2), (1, 2), ["u4"], "tamC")]
    merged = merge(parts, tmp_path / "merged")
    assert merged["test_questions"] == ["u1", "u2", "u3", "u4"] and merged["summary"]["cope"]["vs_tam"]["by_user"]["users"] == 4
    assert merged["tams"] == [{"fold": [0, 2], "fingerprints": ["tamA"]}, {"fold": [1, 2], "fingerprints": ["tamB", "tamC"]}]
    text = (tmp_path / "merged" / "results.md").read_text()
    assert "fold 0/2: TAM tamA, seed 0\n" in text and "fold 1/2: TAM tamB, tamC, seed 0 — its shards used 2 different TAMs" in text
    assert "| 4 |" in text.split("ROUGE-L per user:")[1]  # numbered by rank over the whole run
    with pytest.raises(CopeError, match="shard\\(s\\) 1/2 of fold 1/2 missing"):
        merge(parts[:3], tmp_path / "m2")
    partial = merge([parts[0], parts[3]], tmp_path / "partial", partial=True)  # what finished, named so
    assert partial["ranks"] == {"u1": 1, "u4": 4} and partial["summary"]["cope"]["vs_tam"]["by_user"]["users"] == 2
    assert [t["fold"] for t in merge([parts[0]], tmp_path / "one", partial=True)["tams"]] == [[0, 2]]  # no empty fold
    text = (tmp_path / "partial" / "results.md").read_text()
    assert "PARTIAL: 2 of 4 shards; missing: 1/2 of fold 0/2, 0/2 of fold 1/2" in text and "| 4 |" in text
    other = scores_of(tmp_path / "seeded", (1, 2), (1, 2), ["u4"], "tamC", seed=3)
    with pytest.raises(CopeError, match="different seed: 3 vs 0"):
        merge([*parts[:3], other], tmp_path / "m3")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Shard 0/2 trains the TAM; shard 1/2 and a one-machine run take it with --tam."""
    from click.testing import CliRunner

    from cope_local.cli import cli

    root = tmp_path_factory.mktemp("shards")
    data = write_lamp(root / "lamp")

    def cope(*args):
        result = CliRunner().invoke(cli, ["eval", "--data", str(data), *ARGS, *map(str, args)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    cope("--shard", "0/2", "--out", root / "s0")
    cope("--shard", "1/2", "--out", root / "s1", "--tam", root / "s0" / "tam")
    cope("--out", root / "one", "--tam", root / "s0" / "tam")
    return data, root


@pytest.mark.slow
def test_shards_share_one_tam_and_merge_into_the_one_machine_result(runs, tmp_path, cope):
    data, root = runs
    trained = lambda out: sorted(p.name.split("-")[0] for p in (out / "store" / "adapters" / "tam" / "headline").iterdir())  # noqa: E731
    assert trained(root / "s0") == ["run"] and trained(root / "s1") == trained(root / "one") == ["shared"]
    result = cope("eval", "merge", root / "s1", root / "s0", "--out", tmp_path / "merged")
    assert result.exit_code == 0, result.output
    for name in ("results.json", "results.md"):
        assert (tmp_path / "merged" / name).read_bytes() == (root / "one" / name).read_bytes()
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert merged["users"] == 3 and "vs_tam" in merged["summary"]["base"]
    assert "Missing option '--data'" in cope("eval").output


@pytest.mark.slow
def test_scores_hold_no_text_and_merge_where_results_are_gone(runs, tmp_path):
    """scores.json is what may be kept in a repository: ids, methods and ROUGE, no text or name;
    a shard of which only it survives still merges into the one-machine scores."""
    data, root = runs
    scores = (root / "one" / "scores.json").read_text()
    assert all(set(q) == {"id", "method", "rouge1", "rougeL"} for q in json.loads(scores)["questions"])
    assert "writer" not in scores and "Story" not in scores
    kept = tmp_path / "s1"
    kept.mkdir()
    shutil.copy(root / "s1" / "scores.json", kept)
    merge([root / "s0", kept], tmp_path / "merged")
    assert (tmp_path / "merged" / "scores.json").read_text() == scores


@pytest.mark.slow
def test_merge_and_tam_refuse_what_is_not_one_run(runs, tmp_path, cope_home):
    data, root = runs
    with pytest.raises(CopeError, match="shard\\(s\\) 1/2 missing"):
        merge([root / "s0"], tmp_path / "m")
    changed = tmp_path / "s1"
    shutil.copytree(root / "s1", changed, ignore=shutil.ignore_patterns("store"))
    result = json.loads((changed / "results.json").read_text())
    result["settings"]["questions_per_user"] = 3
    (changed / "results.json").write_text(json.dumps(result))
    with pytest.raises(CopeError, match="different questions_per_user: 3 vs 2"):
        merge([root / "s0", changed], tmp_path / "m")
    from cope_local.eval.protocol import Settings
    from trainer.eval.runner import run

    settings = Settings(users=3, questions_per_user=2, methods=("base", "tam"), tam_items=5)
    with pytest.raises(CopeError, match="trained with another items \\(10; this run: 5\\)"):
        run(data, tmp_path / "other", None, settings, tam=root / "s0" / "tam")


@pytest.mark.slow
def test_ray_runs_one_task_per_user_with_the_same_results(runs, tmp_path, cope_home):
    """On a local 2-CPU Ray instance. Ray itself probes cloud metadata endpoints and its agents
    resolve this machine's address when it starts (even with usage stats off, which cope sets), so
    this one child runs without the tests' network guard: a cluster is a network by nature."""
    pytest.importorskip("ray")
    data, root = runs
    out = tmp_path / "ray"
    guard = str(Path(__file__).parent / "no_network")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in os.environ["PYTHONPATH"].split(os.pathsep) if p != guard)}
    result = subprocess.run([sys.executable, "-m", "cope_local", "eval", "--data", str(data), *ARGS, "--out", str(out),
                             "--tam", str(root / "s0" / "tam"), "--ray"], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    ours, one = (json.loads((folder / "results.json").read_text()) for folder in (out, root / "one"))
    assert ours["questions"] == one["questions"] and ours["summary"] == one["summary"]


def test_compare_two_runs_user_by_user(tmp_path):
    """`cope eval compare A B`: CoPe − TAM per user in each run, and how it moved, by user."""
    from cope_local.eval.compare import compare

    def run(name, gain, data="d"):
        folder = scores_of(tmp_path / name, (0, 1), (0, 1), ["u1", "u2", "u3"], "tam")
        result = json.loads((folder / "scores.json").read_text())
        for row in result["questions"]:
            row["rougeL"] += gain[row["id"]] if row["method"] == "cope" else 0.0
        result["data_fingerprint"] = data
        return result

    a = run("a", {"u1": 0.1, "u2": 0.1, "u3": 0.1})
    b = run("b", {"u1": 0.0, "u2": 0.0, "u3": 0.3})
    found = compare(a, b)
    assert found["users"] == 3 and found["a_minus_b"]["diff"] == pytest.approx(0.0)
    assert (found["a_minus_b"]["better"], found["a_minus_b"]["worse"]) == (2, 1)
    assert [row["user"] for row in found["per_user"]] == [1, 2, 3]
    with pytest.raises(CopeError, match="different data"):
        compare(a, run("c", {"u1": 0, "u2": 0, "u3": 0}, data="other"))



def test_summary_of_some_users_of_a_merged_run(tmp_path, cope):
    """`cope eval summary RUN --ranks A-B --fold k/n`: the statistics of the users of those ranks,
    of that fold (what `cope eval --fold k/n` tested), from a merged run."""
    from cope_local.eval import subset

    parts = [scores_of(tmp_path / f"f{f}s{s}", (f, 2), (s, 2), [f"u{1 + f + 2 * s}"], "tam") for f in (0, 1) for s in (0, 1)]
    merged = merge(parts, tmp_path / "merged")
    assert subset.users_of(merged, fold=(1, 2)) == ["u2", "u4"]
    assert subset.users_of(merged, within=(2, 3)) == ["u2", "u3"]
    assert subset.summary_of(merged, ["u2", "u3"])["cope"]["vs_tam"]["by_user"]["users"] == 2
    shown = cope("eval", "summary", tmp_path / "merged", "--ranks", "2-4", "--fold", "0/2")
    assert shown.exit_code == 0 and shown.output.startswith("1 user\n") and "| CoPe (DPO+CD) |" in shown.output
    with pytest.raises(CopeError, match="not A-B"):
        subset.rank_range("16")
    with pytest.raises(CopeError, match="no user of this run") as refused:
        subset.users_of(merged, within=(40, 60))
    assert "1-4" in refused.value.hint
