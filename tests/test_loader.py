"""How llama.cpp loads models (engine.loader) and what happens when native code crashes (guard)."""

import json
import signal
import subprocess
import sys

import pytest

from cope_local.engine import loader
from cope_local.engine.loader import Loading, decide, probe
from cope_local.errors import CopeError
from cope_local.jobs import guard
from cope_local.store import models
from cope_local.store.models import embedded, embedded_model_path

AMX = frozenset({"sse4_2", "avx512f", "amx_tile", "amx_int8", "amx_bf16"})
NO_AMX = frozenset({"sse4_2", "avx2", "avx512f"})
SEGFAULT = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]


class Memory(dict):
    def put(self, key, value):
        self[key] = value


def never(path):
    raise AssertionError("the probe must not run")


@pytest.fixture(autouse=True)
def fresh_process_memory(monkeypatch):
    monkeypatch.setattr(loader, "_decided", {})
    monkeypatch.delenv(loader.ENV, raising=False)


def test_amx_goes_straight_to_plain_without_a_probe():
    loading = decide(embedded_model_path(), "f", "auto", Memory(), flags=AMX, features={}, run_probe=never)
    assert loading.mode == "plain" and "AMX" in loading.reason
    assert loading.params().use_extra_bufts is False
    # llama.cpp's own report of an AMX build counts too
    assert decide(embedded_model_path(), "f", "auto", flags=NO_AMX, features={"AMX_INT8": "1"}, run_probe=never).mode == "plain"


def test_a_cpu_without_amx_keeps_the_extra_buffers_when_the_probe_passes():
    loading = decide(embedded_model_path(), "f", "auto", Memory(), flags=NO_AMX, features={"AVX2": "1"}, run_probe=lambda p: None)
    assert loading.mode == "extra"
    assert loading.params().use_extra_bufts is True


def test_the_setting_is_honoured():
    assert decide(embedded_model_path(), "f", "plain", flags=NO_AMX, features={}, run_probe=never).mode == "plain"
    assert decide(embedded_model_path(), "f", "extra", flags=AMX, features={}, run_probe=never).mode == "extra"


def test_the_environment_wins_over_the_setting_and_is_checked(monkeypatch):
    monkeypatch.setenv(loader.ENV, "plain")
    assert loader.requested_mode("extra") == "plain"
    monkeypatch.setenv(loader.ENV, "fast")
    with pytest.raises(CopeError, match="COPE_LLAMA_BUFFERS"):
        loader.requested_mode()


def test_a_probe_verdict_is_remembered(monkeypatch):
    memory, calls = Memory(), []
    first = decide(embedded_model_path(), "f", "auto", memory, flags=NO_AMX, features={},
                   run_probe=lambda p: calls.append(p) or "the probe process died by SIGSEGV")
    assert first.mode == "plain" and len(calls) == 1 and len(memory) == 1
    monkeypatch.setattr(loader, "_decided", {})  # a later process: only the stored verdict
    again = decide(embedded_model_path(), "f", "auto", memory, flags=NO_AMX, features={}, run_probe=never)
    assert again == first
    # another model, or other CPU flags, is another question
    assert decide(embedded_model_path(), "g", "auto", memory, flags=NO_AMX, features={}, run_probe=lambda p: None).mode == "extra"


def test_a_child_that_dies_by_sigsegv_makes_auto_choose_plain():
    assert "SIGSEGV" in probe(embedded_model_path(), command=SEGFAULT)
    loading = decide(embedded_model_path(), "f", "auto", Memory(), flags=NO_AMX, features={},
                     run_probe=lambda p: probe(p, command=SEGFAULT))
    assert loading.mode == "plain" and "SIGSEGV" in loading.reason


def test_nan_logits_in_the_probe_mean_plain():
    command = [sys.executable, "-c", "import sys; sys.exit(3)"]
    assert "exit 3" in probe(embedded_model_path(), command=command)


@pytest.mark.slow
def test_the_embedded_model_loads_and_decodes_through_the_loader_in_a_child(cope_home):
    """On whatever CPU runs this (AMX or not): auto decides, and a child drafts with that decision."""
    verdict = probe(embedded_model_path())  # the real probe: None, or why the extra buffers fail here
    assert verdict is None or isinstance(verdict, str)
    code = ("from cope_local.engine.engine import Engine, Plan; from cope_local.store.models import embedded_model_path;"
            "e = Engine(embedded_model_path());"
            "p = e.tokenize_prompt('<|im_start|>user\\nWrite a headline about trees.<|im_end|>\\n<|im_start|>assistant\\n');"
            "print(e.model.loading.mode, len(list(e.generate(p, Plan(user=()), 8)))); e.close()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    mode, count = done.stdout.split()
    assert mode in ("plain", "extra") and int(count) > 0


def test_the_store_remembers_the_verdict_and_cope_models_shows_it(store, cope):
    model = embedded()
    first = models.loading(store, model)
    known_bad = loader.known_bad(loader.cpu_flags(), loader.llama_features())
    stored = [k for k, in store.conn.execute("SELECT key FROM settings WHERE key LIKE 'llama_buffers.%'")]
    assert len(stored) == (0 if known_bad else 1)
    shown = json.loads(cope("models", "buffers", "--json").output)
    assert shown["mode"] == first.mode and shown["requested"] == "auto"
    assert isinstance(shown["cpu_features"], list)
    assert json.loads(cope("models", "buffers", "plain", "--json").output)["mode"] == "plain"
    assert "plain" in cope("models").output


def test_a_native_crash_in_a_job_is_reported_and_changes_nothing(store, capsys):
    """A watched job killed by a signal: the parent names the model and adapter, says what to try,
    exits non-zero; the active adapter stays and the interrupted run row is closed as failed."""
    from cope_local.store.database import utc_now

    with store.transaction():
        profile = store.ensure_profile("ann")
        store.conn.execute("INSERT INTO training_runs (profile_id, task, status, started_at) VALUES (?, 'headline', 'running', ?)",
                           (profile, utc_now()))
    crash = [sys.executable, "-c",
             "import os, signal; open(os.environ['COPE_CRASH_NOTE'], 'w').write("
             "'decoding with the model /m/base.gguf (extra buffers), adapter /a/user.gguf at 1');"
             "os.kill(os.getpid(), signal.SIGSEGV)"]
    code = guard.run_watched(["train", "--profile", "ann"], command=crash)
    err = capsys.readouterr().err
    assert code == guard.CRASH_EXIT != 0
    assert "SIGSEGV" in err and "/m/base.gguf" in err and "/a/user.gguf" in err and "COPE_LLAMA_BUFFERS=plain" in err
    status, error = store.conn.execute("SELECT status, error FROM training_runs").fetchone()
    assert status == "failed" and "/a/user.gguf" in error


def test_a_watched_job_passes_its_exit_code_through():
    assert guard.run_watched(["bench"], command=[sys.executable, "-c", "raise SystemExit(4)"]) == 4


def test_loading_records_its_mode_on_the_model(engine):
    assert isinstance(engine.model.loading, Loading) and engine.model.loading.mode in ("plain", "extra")


def test_crash_message_names_the_signal():
    assert "SIGSEGV" in str(guard.crash_error("eval", signal.SIGSEGV, "loading the model m"))


def test_no_code_loads_a_model_except_through_the_loader():
    """llama.cpp's model loading is called in one place, with the loader's parameters."""
    from pathlib import Path

    root = Path(__file__).parent.parent
    calls = {str(path.relative_to(root)) for folder in ("cope_local", "trainer", "tui")
             for path in (root / folder).rglob("*.py")
             if "llama_model_load_from_file" in path.read_text() or "llama_cpp.Llama(" in path.read_text()}
    assert calls == {"cope_local/engine/llama.py"}
    assert "loading.params()" in (root / "cope_local/engine/llama.py").read_text()
