"""Applies the numbered SQL files in the `migrations` package, in order, each in one transaction."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources

from cope_local.errors import CopeError
from cope_local.store.sqlcipher import Connection, Error

_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    sql: str


def available() -> list[Migration]:
    found = []
    for entry in resources.files("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.number)
    numbers = [m.number for m in found]
    assert numbers == list(range(1, len(found) + 1)), f"migrations must be numbered 1..n: {numbers}"
    return found


def applied(conn: Connection) -> list[int]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations "
        "(number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    return [row[0] for row in conn.execute("SELECT number FROM _migrations ORDER BY number")]


def upgrade(conn: Connection, upto: int | None = None) -> list[Migration]:
    """Bring the schema up to `upto` (default: the newest); returns the migrations it ran."""
    done = set(applied(conn))
    known = available()
    newest = known[-1].number if known else 0
    if done and max(done) > newest:
        raise CopeError(
            f"this database was written by a newer cope-local (schema {max(done)}, this one knows {newest})",
            hint="upgrade cope-local (pip install -U cope-local), or point COPE_HOME at another folder",
        )
    ran = []
    for migration in known:
        if migration.number in done or (upto is not None and migration.number > upto):
            continue
        _apply(conn, migration)
        ran.append(migration)
    return ran


def _apply(conn: Connection, migration: Migration) -> None:
    # executescript() commits first, so BEGIN/COMMIT go inside the script; DDL is transactional.
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record = (
        f"INSERT INTO _migrations (number, name, applied_at) "
        f"VALUES ({migration.number}, '{migration.name}', '{stamp}');"
    )
    try:
        conn.executescript(f"BEGIN;\n{migration.sql}\n{record}\nCOMMIT;")
    except Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise CopeError(f"migration {migration.number:04d}_{migration.name} failed: {exc}",
                        hint="the database is as it was; restore a backup (cope restore) or report this") from exc
