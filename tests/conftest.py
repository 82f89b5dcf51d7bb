import json

import pytest
from click.testing import CliRunner

from cope_local import adapter_versions
from cope_local.bench.fixtures import random_lora
from cope_local.cli import cli
from cope_local.engine.engine import Engine
from cope_local.models import embedded, embedded_model_path
from cope_local.home import ensure_home
from cope_local.store import Store


@pytest.fixture
def cope_home(tmp_path, monkeypatch):
    root = tmp_path / "home"
    monkeypatch.setenv("COPE_HOME", str(root))
    return root


@pytest.fixture
def store(cope_home):
    with Store.open(ensure_home(cope_home)) as opened:
        yield opened


@pytest.fixture
def cope(cope_home):
    """Run the CLI in-process: cope("import", ...) -> click Result."""
    runner = CliRunner()

    def run(*args, input=None):
        return runner.invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)

    return run


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# -- the real embedded model and real (random, non-zero) LoRA adapters -------------------------

@pytest.fixture(scope="session")
def lora_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("loras")
    return {"tam": random_lora(folder / "tam.gguf", seed=1), "user": random_lora(folder / "user.gguf", seed=2, std=0.03)}


@pytest.fixture(scope="session")
def engine():
    with Engine(embedded_model_path()) as loaded:
        yield loaded


def register_adapters(store, profile_id, task, files):
    fingerprint = embedded().fingerprint
    for kind, path in files.items():
        adapter_versions.register(store, task=task, kind=kind, profile_id=profile_id if kind == "user" else None,
                                  gguf_path=path, base_fingerprint=fingerprint, activate=True)
