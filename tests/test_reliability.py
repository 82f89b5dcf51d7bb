"""Never lost, never half-written: kill -9 during adapter activation, the app reading while a
retrain writes, a full disk while an adapter is written, and a damaged database file.
(Kill -9 during import and during training: test_import_crash.py and test_trainer.py.)"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from textwrap import dedent

import pytest
from conftest import dump, register_adapters

from cope_local.home import ensure_home
from cope_local.store import adapter_registry
from cope_local.store.database import Store

HEADLINES = "text,title\n" + "".join(f"Story {i} about the town,Town Story {i}\n" for i in range(10))


def python(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", dedent(code)], text=True, **kwargs)


def test_kill_during_adapter_activation_leaves_one_usable_active_version(cope, cope_home, tmp_path, lora_files):
    (tmp_path / "h.csv").write_text(HEADLINES)
    cope("import", tmp_path / "h.csv", "-p", "ada", "-t", "headline")
    home = ensure_home(cope_home)
    with Store.open(home) as store:
        ada = store.profile_id("ada")
        for path in (lora_files["tam"], lora_files["user"]):
            register_adapters(store, ada, "headline", {"user": path})
        ids = [v.id for v in adapter_registry.versions(store, "headline", "user", ada)]
    flipper = f"""
        from cope_local.home import ensure_home
        from cope_local.store import adapter_registry
        from cope_local.store.database import Store
        with Store.open(ensure_home()) as store:
            print("ready", flush=True)
            while True:
                for adapter_id in {ids}:
                    adapter_registry.activate(store, adapter_id)
        """
    rng = random.Random(7)
    for _ in range(6):
        process = python(flipper, stdout=subprocess.PIPE)
        assert process.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait()
        dump(home.db_path)  # integrity_check passes
        with Store.open(home) as store:
            active = [v for v in adapter_registry.versions(store, "headline", "user", ada) if v.active]
            assert len(active) == 1 and active[0].gguf_path.exists()
    result = cope("draft", "-t", "headline", "-p", "ada", "-m", "oppu", "--max-tokens", "8", "--json", "text=A fair in town.")
    assert json.loads(result.stdout)["text"]


async def test_the_app_reads_while_a_retrain_writes_without_locking(cope, cope_home, tmp_path):
    from tui.adapters_pane import AdaptersPane
    from tui.app import CopeApp
    from tui.history_pane import HistoryPane

    (tmp_path / "h.csv").write_text(HEADLINES)
    cope("import", tmp_path / "h.csv", "-p", "ada", "-t", "headline")
    stop = tmp_path / "stop"
    writer = python("""
        import os, time
        from pathlib import Path
        from cope_local.home import ensure_home
        from cope_local.store.database import Store
        with Store.open(ensure_home()) as store:
            ada = store.profile_id("ada")
            print("ready", flush=True)
            end, n = time.monotonic() + 120, 0
            # long write transactions, as a retrain's progress + import, until the app has read enough
            while not Path(os.environ['STOP_FILE']).exists() and time.monotonic() < end:
                with store.transaction() as conn:
                    conn.execute("INSERT INTO training_runs (profile_id, task, status, started_at) VALUES (?, 'headline', 'running', 'now')", (ada,))
                    for i in range(300):
                        n += 1
                        store.add_writing(ada, "headline", {"text": f"written {n}"}, f"Written {n}")
        print("done", n, flush=True)
        """, stdout=subprocess.PIPE, env={**os.environ, "STOP_FILE": str(stop)})
    assert writer.stdout.readline().strip() == "ready"
    app = CopeApp(home=ensure_home(cope_home))
    reads = 0
    async with app.run_test(size=(100, 30)) as pilot:
        while writer.poll() is None:
            app.query_one(AdaptersPane).reload()
            app.query_one(HistoryPane).reload()
            with app.open_store() as other:  # as the app's workers do
                other.writings(search="written", limit=5)
            reads += 1
            if reads == 10:  # every read so far overlapped the writer's transactions
                stop.touch()
            await pilot.pause(0.01)
    assert writer.wait() == 0
    done, written = writer.stdout.read().split()
    assert done == "done" and int(written) > 0
    assert reads >= 10


def test_a_full_disk_while_writing_an_adapter_keeps_the_active_one(cope, cope_home, tmp_path, lora_files):
    (tmp_path / "h.csv").write_text(HEADLINES)
    cope("import", tmp_path / "h.csv", "-p", "ada", "-t", "headline")
    home = ensure_home(cope_home)
    with Store.open(home) as store:
        register_adapters(store, store.profile_id("ada"), "headline", {"user": lora_files["user"]})
    new = home.adapters / "v2.gguf"
    # RLIMIT_FSIZE makes every write past 64 KiB fail, as a full disk does (the adapter is ~2 MiB).
    writing = python(f"""
        import resource, signal, sys
        from cope_local.jobs.bench_fixtures import random_lora
        from cope_local.errors import CopeError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.RLIM_INFINITY))
        try:
            random_lora({str(new)!r}, seed=3)
        except CopeError as exc:
            print(exc)
            sys.exit(1)
        """, stdout=subprocess.PIPE)
    message = writing.stdout.read()
    assert writing.wait() == 1 and "cannot write the adapter" in message and "active adapter is unchanged" in message
    assert not new.exists() and not list(home.adapters.glob("*.partial"))
    with Store.open(home) as store:
        assert adapter_registry.active(store, "headline", "user", store.profile_id("ada")).gguf_path == lora_files["user"]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_database_gives_a_clear_error_and_is_left_alone(cope, cope_home, tmp_path, damage):
    (tmp_path / "h.csv").write_text(HEADLINES)
    cope("import", tmp_path / "h.csv", "-p", "ada", "-t", "headline")
    db = cope_home / "cope.db"
    with Store.open(ensure_home(cope_home)) as store:
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.write_bytes(os.urandom(8192) if damage == "garbage" else db.read_bytes()[:3000])
    before = db.read_bytes()
    result = subprocess.run([sys.executable, "-m", "cope_local", "history"], capture_output=True, text=True,
                            env={**os.environ, "COPE_HOME": str(cope_home)})
    assert result.returncode == 1 and "cannot open the database" in result.stderr
    assert "Traceback" not in result.stderr
    assert db.read_bytes() == before
