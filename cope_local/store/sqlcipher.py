"""The encrypted SQLite file (SQLCipher 4, AES-256): connect with a key, encrypt an older plain file
in place, and online backups."""

from __future__ import annotations

import os
from pathlib import Path

import sqlcipher3

from cope_local.errors import CopeError
from cope_local.home import create_private_file
from cope_local.store.keys import DatabaseKey

Connection = sqlcipher3.Connection
Error = sqlcipher3.Error
DatabaseError = sqlcipher3.DatabaseError
IntegrityError = sqlcipher3.IntegrityError

PLAIN_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 10_000


def is_plaintext(path: Path) -> bool:
    """An unencrypted SQLite file (one made before encryption, or by another program)."""
    with open(path, "rb") as handle:
        return handle.read(len(PLAIN_HEADER)) == PLAIN_HEADER


def connect(path: Path, key: DatabaseKey) -> Connection:
    conn = sqlcipher3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute("PRAGMA cipher_log_level = NONE")  # a wrong key is reported below, not logged to stderr
    conn.execute(f"PRAGMA key = {key.pragma}")
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except DatabaseError as exc:
        conn.close()
        raise CopeError(
            f"cannot open the database {path} with the key from {key.source}: {exc}",
            hint="set COPE_PASSPHRASE to the passphrase it was created with, or run as the user whose keyring holds its key",
        ) from exc
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def encrypt_in_place(path: Path, key: DatabaseKey) -> None:
    """Copy a plain database into an encrypted file beside it, then swap it in with one rename:
    a crash at any point leaves either the plain or the encrypted database, whole. This runs on
    the first open after upgrading to an encrypting version, before anything else has it open."""
    staging = path.with_name(path.name + ".encrypting")
    staging.unlink(missing_ok=True)
    create_private_file(staging)
    plain = sqlcipher3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        plain.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        plain.execute(f"ATTACH DATABASE ? AS encrypted KEY {key.pragma}", (str(staging),))
        plain.execute("SELECT sqlcipher_export('encrypted')")
        version = plain.execute("PRAGMA user_version").fetchone()[0]
        plain.execute(f"PRAGMA encrypted.user_version = {int(version)}")
        plain.execute("DETACH DATABASE encrypted")
    finally:
        plain.close()
    _fsync(staging)
    for suffix in ("-wal", "-shm"):  # checkpointed above; the encrypted file starts without them
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.replace(staging, path)


def backup(conn: Connection, dest: Path) -> None:
    """A consistent copy of the live database (encrypted with the same key) while others use it."""
    if dest.exists():
        raise CopeError(f"{dest} already exists", hint="choose a new file name")
    create_private_file(dest)
    try:
        conn.execute("VACUUM INTO ?", (str(dest),))
    except Error as exc:
        dest.unlink(missing_ok=True)
        raise CopeError(f"cannot write the backup {dest}: {exc}", hint="check the free space and the folder") from exc


def restore(source: Path, key: DatabaseKey, conn: Connection) -> None:
    """Replace the live database's content with a backup's, through SQLite's backup API (so WAL
    readers and writers stay consistent). The backup must open with the same key and pass an
    integrity check first."""
    copy = connect(source, key)
    try:
        if copy.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise CopeError(f"the backup {source} is damaged", hint="choose another backup")
        copy.backup(conn)
    finally:
        copy.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
