"""A process killed in the middle of an import leaves the database exactly as it was."""

import json
import os
import signal
import subprocess
import sys
import time

from conftest import dump

from cope_local.home import ensure_home
from cope_local.store.database import Store


def test_kill_mid_import_leaves_the_db_unchanged(cope_home, tmp_path):
    home = ensure_home()
    with Store.open(home) as store:
        person = store.ensure_profile("ada")
        store.add_writing(person, "headline", {"text": "kept"}, "Already Here")
        store.conn.commit()
    before = dump(home.db_path)

    big = tmp_path / "big.jsonl"
    with big.open("w") as handle:
        for i in range(150_000):
            handle.write(json.dumps({"text": f"article {i} " * 8, "title": f"Headline {i}"}) + "\n")
    env = {**os.environ, "COPE_HOME": str(cope_home)}
    process = subprocess.Popen(
        [sys.executable, "-m", "cope_local", "import", str(big), "--profile", "ada"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wal = home.db_path.with_name("cope.db-wal")
    deadline = time.monotonic() + 120
    # Kill once the import transaction is writing pages (the WAL grows past a few pages).
    while time.monotonic() < deadline and process.poll() is None:
        if wal.exists() and wal.stat().st_size > 2_000_000:
            break
        time.sleep(0.01)
    assert process.poll() is None, "the import finished before it could be killed; make the file bigger"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert dump(home.db_path) == before
