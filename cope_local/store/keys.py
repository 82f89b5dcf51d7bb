"""Where the database key comes from: the OS keyring, else COPE_PASSPHRASE, else a prompt — never
nothing (an unencrypted database is not an option)."""

from __future__ import annotations

import getpass
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

import keyring
from keyring.errors import KeyringError

from cope_local.errors import CopeError

SERVICE = "cope-local"
PASSPHRASE_ENV = "COPE_PASSPHRASE"


@dataclass(frozen=True)
class DatabaseKey:
    pragma: str  # the value for SQLCipher's PRAGMA key
    source: str  # where it lives, for `cope privacy status`

    @classmethod
    def raw(cls, hex_key: str, source: str) -> DatabaseKey:
        # A raw 256-bit key skips SQLCipher's passphrase KDF (≈0.2 s on every open).
        return cls(f"\"x'{hex_key}'\"", source)

    @classmethod
    def passphrase(cls, text: str, source: str) -> DatabaseKey:
        return cls("'" + text.replace("'", "''") + "'", source)


def usable_keyring():
    """The OS keyring backend, or None where there is none (headless Linux without a secret service)."""
    backend = keyring.get_keyring()
    try:
        backend.get_password(SERVICE, "probe")
    except (KeyringError, RuntimeError, OSError):  # no backend, locked, or no D-Bus session
        return None
    return backend


def backend_name(backend) -> str:
    return f"{type(backend).__module__}.{type(backend).__name__}"


def stored_key(db_path: Path) -> DatabaseKey | None:
    backend = usable_keyring()
    hex_key = backend.get_password(SERVICE, str(db_path.resolve())) if backend else None
    return DatabaseKey.raw(hex_key, f"OS keyring ({backend_name(backend)})") if hex_key else None


def database_key(db_path: Path, new: bool) -> DatabaseKey:
    """The key for `db_path`; `new` when the file is being created (or encrypted for the first time)."""
    found = stored_key(db_path)
    if found:
        return found
    if os.environ.get(PASSPHRASE_ENV):
        return DatabaseKey.passphrase(os.environ[PASSPHRASE_ENV], f"the {PASSPHRASE_ENV} environment variable")
    backend = usable_keyring()
    if new and backend:
        hex_key = secrets.token_hex(32)
        backend.set_password(SERVICE, str(db_path.resolve()), hex_key)
        return DatabaseKey.raw(hex_key, f"OS keyring ({backend_name(backend)})")
    if sys.stdin.isatty():
        return DatabaseKey.passphrase(_prompt(db_path, new), "a passphrase typed at the prompt")
    raise CopeError(
        f"no key for the encrypted database {db_path}: "
        + ("no OS keyring is available to keep a new one" if new else "the OS keyring holds none for it"),
        hint=f"set {PASSPHRASE_ENV} to your passphrase (the same one every time), or install a keyring backend",
    )


def _prompt(db_path: Path, new: bool) -> str:
    text = getpass.getpass(f"Passphrase for {db_path}: ")
    if new and getpass.getpass("Repeat it: ") != text:
        raise CopeError("the passphrases differ", hint="run the command again")
    if not text:
        raise CopeError("an empty passphrase cannot protect the database", hint="type a passphrase")
    return text
