import json
import os

import pytest
from click.testing import CliRunner

from cope_local.cli import cli
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
