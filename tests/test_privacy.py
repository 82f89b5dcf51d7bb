"""The privacy promises: no network, encrypted at rest with the key in a keyring (or a passphrase,
never nothing), export and forget, backup and restore."""

import json
import os
import socket
import subprocess
import sys

import pytest
from conftest import NET_LOG, raw_connection

from cope_local.home import ensure_home
from cope_local.store import sqlcipher
from cope_local.store.database import Store

SECRET_WORD = "Zanzibarquette"
HEADLINES = "text,title\n" + "".join(f"The {SECRET_WORD} story number {i},{SECRET_WORD} Headline {i}\n" for i in range(12))


def cope_process(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cope_local", *map(str, args)], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=120)


def test_the_network_is_blocked_here_and_in_every_subprocess():
    with pytest.raises(OSError, match="network access blocked"):
        socket.create_connection(("192.0.2.1", 80))
    probe = "import socket\ntry:\n    socket.socket().connect(('192.0.2.1', 80))\nexcept OSError as e:\n    print(e)"
    assert "network access blocked" in subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
    a, b = socket.socketpair()  # local sockets (asyncio's wake-up pipe) stay allowed
    a.close(), b.close()
    with pytest.raises(ConnectionRefusedError):  # and so does loopback (a local Ray instance)
        socket.create_connection(("127.0.0.1", 9))
    NET_LOG.unlink()  # these attempts were this test's own


def test_the_database_is_encrypted_at_rest(cope, cope_home, tmp_path):
    (tmp_path / "h.csv").write_text(HEADLINES)
    assert cope("import", tmp_path / "h.csv", "-p", "ada", "-t", "headline").exit_code == 0
    db = cope_home / "cope.db"
    for path in (db, db.with_name("cope.db-wal")):
        if path.exists():
            assert SECRET_WORD.encode() not in path.read_bytes()
    assert not sqlcipher.is_plaintext(db)
    report = json.loads(cope("privacy", "status", "--json").stdout)
    assert report["encrypted"] and "SQLCipher" in report["cipher"]
    assert report["key"] == "OS keyring (file_keyring.FileKeyring)"
    assert report["readable_by_others"] == []
    assert oct(db.stat().st_mode & 0o777) == "0o600"


def test_without_a_keyring_a_passphrase_is_required_and_never_plain_text(tmp_path):
    (tmp_path / "h.csv").write_text(HEADLINES)
    home = tmp_path / "home"
    no_keyring = {"COPE_HOME": str(home), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    refused = cope_process("import", tmp_path / "h.csv", "-p", "ada", "-t", "headline", env=no_keyring)
    assert refused.returncode == 1 and "COPE_PASSPHRASE" in refused.stderr
    assert not (home / "cope.db").exists()

    with_passphrase = {**no_keyring, "COPE_PASSPHRASE": "correct horse"}
    assert cope_process("import", tmp_path / "h.csv", "-p", "ada", "-t", "headline", env=with_passphrase).returncode == 0
    status = json.loads(cope_process("privacy", "status", "--json", env=with_passphrase).stdout)
    assert status["encrypted"] and status["key"] == "the COPE_PASSPHRASE environment variable"

    before = (home / "cope.db").read_bytes()
    wrong = cope_process("history", env={**no_keyring, "COPE_PASSPHRASE": "wrong"})
    assert wrong.returncode == 1 and "cannot open the database" in wrong.stderr and "Traceback" not in wrong.stderr
    assert (home / "cope.db").read_bytes() == before


def test_a_plain_database_from_an_earlier_version_is_encrypted_in_place(cope_home):
    home = ensure_home(cope_home)
    with Store.open(home) as store:
        store.add_writing(store.ensure_profile("ada"), "headline", {"text": "kept"}, "Kept Through Encryption")
        store.conn.commit()
        plain = home.root / "plain.db"
        store.conn.execute("ATTACH DATABASE ? AS plain KEY ''", (str(plain),))
        store.conn.execute("SELECT sqlcipher_export('plain')")
        store.conn.execute("PRAGMA plain.user_version = 0")
        store.conn.execute("DETACH DATABASE plain")
    for suffix in ("-wal", "-shm"):
        home.db_path.with_name("cope.db" + suffix).unlink(missing_ok=True)
    plain.replace(home.db_path)
    assert sqlcipher.is_plaintext(home.db_path)

    with Store.open(home) as store:
        assert [w.output for w in store.writings(search="kept")] == ["Kept Through Encryption"]
    assert not sqlcipher.is_plaintext(home.db_path)
    assert not home.db_path.with_name("cope.db.encrypting").exists()


def test_export_then_forget_a_profile(cope, cope_home, tmp_path):
    (tmp_path / "ada.csv").write_text(HEADLINES)
    (tmp_path / "bob.csv").write_text("text,title\nA quiet day in the park,Parks Are Quiet\n")
    cope("import", tmp_path / "ada.csv", "-p", "ada", "-t", "headline")
    cope("import", tmp_path / "bob.csv", "-p", "bob", "-t", "headline")
    home = ensure_home(cope_home)
    with Store.open(home) as store:
        ada = store.profile_id("ada")
        store.conn.execute("INSERT INTO drafts (profile_id, task, inputs, method, text, created_at) "
                           "VALUES (?, 'headline', '{}', 'cope', 'A Draft', 'now')", (ada,))
        store.conn.commit()
    (home.adapters / str(ada) / "headline").mkdir(parents=True)
    (home.adapters / str(ada) / "headline" / "adapter.gguf").write_bytes(b"weights")

    out = tmp_path / "ada.json"
    assert cope("export", out, "-p", "ada").exit_code == 0
    exported = json.loads(out.read_text())
    [person] = exported["profiles"]
    assert exported["format"] == "cope-local-export" and person["name"] == "ada"
    assert len(person["writings"]) == 12 and person["drafts"][0]["text"] == "A Draft"
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert "already exists" in cope_process("export", out, env={"COPE_HOME": str(cope_home)}).stderr

    result = cope("forget", "-p", "ada", "--yes")
    assert result.exit_code == 0 and "12 writings, 1 drafts" in result.stdout
    with Store.open(home) as store:
        assert [p["name"] for p in store.profiles()] == ["bob"]
        assert store.writings(search=SECRET_WORD) == []
        assert [w.output for w in store.writings(search="park")] == ["Parks Are Quiet"]
        assert store.conn.execute("SELECT count(*) FROM drafts").fetchone()[0] == 0
        assert store.conn.execute("PRAGMA freelist_count").fetchone()[0] == 0  # VACUUMed: no old pages
        store.conn.execute("INSERT INTO writings_fts (writings_fts) VALUES ('integrity-check')")
    assert not (home.adapters / str(ada)).exists()


def test_backup_and_restore(cope, cope_home, tmp_path):
    (tmp_path / "h.csv").write_text(HEADLINES)
    cope("import", tmp_path / "h.csv", "-p", "ada", "-t", "headline")
    backup = tmp_path / "backup.db"
    assert cope("backup", backup).exit_code == 0
    assert not sqlcipher.is_plaintext(backup) and oct(backup.stat().st_mode & 0o777) == "0o600"
    cope("forget", "-p", "ada", "--yes")

    result = cope("restore", backup)
    assert result.exit_code == 0, result.output
    with Store.open(ensure_home(cope_home)) as store:
        assert len(store.writings(profile="ada")) == 12
    [kept] = cope_home.glob("before-restore-*.db")
    conn = raw_connection(kept, key_of=cope_home / "cope.db")  # the database as it was before the restore: ada forgotten
    assert conn.execute("SELECT count(*) FROM writings").fetchone()[0] == 0
    conn.close()

    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(backup.read_bytes()[:5000])
    assert cope_process("restore", damaged, env={"COPE_HOME": str(cope_home)}).returncode == 1
    with Store.open(ensure_home(cope_home)) as store:
        assert len(store.writings(profile="ada")) == 12
