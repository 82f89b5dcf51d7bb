import importlib.util
import json
import os
import tempfile
from pathlib import Path

# The network guard first, before any library can keep a reference to the real socket class.
_guard = importlib.util.spec_from_file_location("no_network", Path(__file__).parent / "no_network" / "sitecustomize.py")
_guard.loader.exec_module(importlib.util.module_from_spec(_guard))

import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from cope_local.cli import cli  # noqa: E402
from cope_local.engine.engine import Engine  # noqa: E402
from cope_local.home import ensure_home  # noqa: E402
from cope_local.jobs.bench_fixtures import random_lora  # noqa: E402
from cope_local.store import (  # noqa: E402
    adapter_registry,
    keys,
    sqlcipher,  # noqa: E402
)
from cope_local.store.database import Store  # noqa: E402
from cope_local.store.models import embedded, embedded_model_path  # noqa: E402

# The environment every test and every `cope` subprocess runs in (subprocesses inherit it):
# - every store is encrypted with a key kept in a file-backed test keyring they all share;
# - no internet socket can be opened (tests/no_network/sitecustomize.py), and attempts are logged.
TESTS = Path(__file__).parent
SCRATCH = Path(tempfile.mkdtemp(prefix="cope-tests-"))
NET_LOG = SCRATCH / "network-attempts.log"
os.environ["PYTHON_KEYRING_BACKEND"] = "file_keyring.FileKeyring"
os.environ["COPE_TEST_KEYRING"] = str(SCRATCH / "keyring.json")
os.environ["COPE_TEST_NET_LOG"] = str(NET_LOG)
os.environ["XDG_CONFIG_HOME"] = str(SCRATCH / "config")  # the app's remembered data folder, systemd units
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS / "no_network"), str(TESTS), os.environ.get("PYTHONPATH")]))
os.environ.pop("COPE_PASSPHRASE", None)


@pytest.fixture(autouse=True)
def no_network_attempts():
    """Fails any test during which something (here or in a subprocess) tried to reach the network."""
    NET_LOG.unlink(missing_ok=True)
    yield
    attempts = NET_LOG.read_text() if NET_LOG.exists() else ""
    assert not attempts, "a network access was attempted:\n" + attempts


def raw_connection(db_path, key_of=None):
    """A plain DB-API connection to an encrypted store (or a backup of `key_of`), for checks below the Store API."""
    return sqlcipher.connect(db_path, keys.database_key(key_of or db_path, new=False))


def dump(db_path) -> list:
    """Integrity-checked schema and every row of every table (SQLCipher has no iterdump)."""
    conn = raw_connection(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tables = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
        return tables + [(name, sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)) for name, _ in tables]
    finally:
        conn.close()


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
        adapter_registry.register(store, task=task, kind=kind, profile_id=profile_id if kind == "user" else None,
                                  gguf_path=path, base_fingerprint=fingerprint, activate=True)


# -- a second architecture: Gemma 3 270M, where its package (the gemma3 extra) is installed ----

@pytest.fixture(scope="session")
def gemma_path(tmp_path_factory):
    from cope_local.store.packaged_models import PACKAGED, assemble

    packaged = PACKAGED["gemma3-270m"]
    if not packaged.installed:
        pytest.skip(f"Gemma 3 270M is not installed: {packaged.install_hint}")
    return assemble(packaged, tmp_path_factory.mktemp("gemma3"))


@pytest.fixture(scope="session")
def gemma_engine(gemma_path):
    with Engine(gemma_path) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def gemma_loras(gemma_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("gemma-loras")
    return {"tam": random_lora(folder / "tam.gguf", seed=1, base_path=gemma_path),
            "user": random_lora(folder / "user.gguf", seed=2, std=0.03, base_path=gemma_path)}
