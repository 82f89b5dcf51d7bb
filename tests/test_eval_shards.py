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
from cope_local.eval_results import _interleave, merge

pytest.importorskip("transformers")

from test_eval import write_lamp  # noqa: E402

ARGS = ["--users", "3", "--questions-per-user", "2", "--methods", "base,tam", "--tam-items", "300"]


def test_shards_are_put_back_in_one_machine_order():
    assert _interleave([["a", "c", "e"], ["b", "d"]]) == ["a", "b", "c", "d", "e"]


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
    from trainer.eval_suite import Settings, run

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
