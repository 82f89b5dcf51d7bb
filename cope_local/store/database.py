"""The local SQLite store: open (WAL, migrations), profiles, writing history, search, settings."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlite_utils

from cope_local.errors import CopeError
from cope_local.home import Home, create_private_file, ensure_home
from cope_local.store import keys, migrate, sqlcipher


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def content_hash(inputs: dict[str, str], output: str) -> str:
    canonical = json.dumps({"inputs": inputs, "output": output}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Writing:
    id: int
    profile: str
    task: str
    inputs: dict[str, str]
    output: str
    origin: str
    source_path: str | None
    source_line: int | None
    written_at: str | None
    created_at: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


class Store:
    """One open database. Several processes may hold one (WAL + busy timeout)."""

    def __init__(self, conn: sqlcipher.Connection, home: Home, key: keys.DatabaseKey):
        self.conn = conn
        self.key = key  # kept for backups and restores (which use the same key)
        self.db = sqlite_utils.Database(conn)  # dict rows for reads; writes go through transaction()
        self.home = home

    @classmethod
    def open(cls, home: Home | None = None, upto: int | None = None, key: keys.DatabaseKey | None = None) -> Store:
        """The store of `home`, with its key from keys.database_key unless one is given."""
        home = home or ensure_home()
        path = home.db_path
        new = not path.exists() or path.stat().st_size == 0
        plaintext = not new and sqlcipher.is_plaintext(path)
        key = key or keys.database_key(path, new=new or plaintext)
        if new:
            create_private_file(path)
        try:
            if plaintext:
                sqlcipher.encrypt_in_place(path, key)
            conn = sqlcipher.connect(path, key)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate.upgrade(conn, upto=upto)
        except sqlcipher.DatabaseError as exc:
            raise CopeError(
                f"cannot open the database {home.db_path}: {exc}",
                hint="restore it from a backup, or move it aside to start a new one",
            ) from exc
        return cls(conn, home, key)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlcipher.Connection]:
        """All or nothing: a crash or exception inside leaves the database as it was."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- profiles ---------------------------------------------------------------------------

    def profile_id(self, name: str) -> int:
        row = self.conn.execute("SELECT id FROM profiles WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise CopeError(
                f"no profile named '{name}'",
                hint=f"import some writing first: cope import PATH --profile {name}",
            )
        return row[0]

    def ensure_profile(self, name: str, kind: str = "person") -> int:
        if not name.strip():
            raise CopeError("a profile name cannot be empty", hint="pass --profile NAME")
        self.conn.execute(
            "INSERT OR IGNORE INTO profiles (name, kind, created_at) VALUES (?, ?, ?)",
            (name, kind, utc_now()),
        )
        return self.profile_id(name)

    def profiles(self) -> list[dict]:
        rows = self.db.query(
            """SELECT p.name, p.kind, p.created_at, w.task, count(w.id) AS count
               FROM profiles p LEFT JOIN writings w ON w.profile_id = p.id
               GROUP BY p.id, w.task ORDER BY p.name, w.task"""
        )
        found: dict[str, dict] = {}
        for row in rows:
            entry = found.setdefault(row["name"], {"name": row["name"], "kind": row["kind"],
                                                   "created_at": row["created_at"], "tasks": {}})
            if row["task"] is not None:
                entry["tasks"][row["task"]] = row["count"]
        return list(found.values())

    # -- writings ---------------------------------------------------------------------------

    def add_writing(
        self,
        profile_id: int,
        task: str,
        inputs: dict[str, str],
        output: str,
        *,
        origin: str = "import",
        source_path: str | None = None,
        source_line: int | None = None,
        written_at: str | None = None,
    ) -> int | None:
        """Insert one item; returns its id, or None when the same text is already stored."""
        cursor = self.conn.execute(
            """INSERT OR IGNORE INTO writings (profile_id, task, inputs, output, origin, source_path,
               source_line, written_at, created_at, content_hash)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                profile_id,
                task,
                json.dumps(inputs, ensure_ascii=False, sort_keys=True),
                output,
                origin,
                source_path,
                source_line,
                written_at,
                utc_now(),
                content_hash(inputs, output),
            ),
        )
        return cursor.lastrowid if cursor.rowcount else None

    def writings(
        self,
        profile: str | None = None,
        task: str | None = None,
        search: str | None = None,
        limit: int | None = None,
    ) -> list[Writing]:
        """History newest first; `search` is an FTS5 query over inputs and output."""
        where, params = [], []
        sql = """SELECT w.id, p.name, w.task, w.inputs, w.output, w.origin, w.source_path,
                        w.source_line, w.written_at, w.created_at
                 FROM writings w JOIN profiles p ON p.id = w.profile_id"""
        if search:
            sql += " JOIN writings_fts f ON f.rowid = w.id"
            where.append("writings_fts MATCH ?")
            params.append(_fts_query(search))
        if profile:
            where.append("w.profile_id = ?")
            params.append(self.profile_id(profile))
        if task:
            where.append("w.task = ?")
            params.append(task)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY f.rank" if search else " ORDER BY coalesce(w.written_at, w.created_at) DESC, w.id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [
            Writing(r[0], r[1], r[2], json.loads(r[3]), *r[4:]) for r in self.conn.execute(sql, params)
        ]

    def count_writings(self, profile_id: int, task: str) -> int:
        return self.conn.execute(
            "SELECT count(*) FROM writings WHERE profile_id = ? AND task = ?", (profile_id, task)
        ).fetchone()[0]

    def delete_writing(self, writing_id: int) -> bool:
        with self.transaction():
            return self.conn.execute("DELETE FROM writings WHERE id = ?", (writing_id,)).rowcount > 0

    # -- settings ---------------------------------------------------------------------------

    def corpus(self, task: str, excluded_profile: int, limit: int) -> list[tuple[dict, str]]:
        """Other people's writing for a task (task-corpus and eval profiles, never `excluded_profile`),
        newest first: what a task adapter learns from."""
        rows = self.conn.execute(
            """SELECT w.inputs, w.output FROM writings w JOIN profiles p ON p.id = w.profile_id
               WHERE w.task = ? AND p.id != ? AND p.kind IN ('corpus', 'eval')
               ORDER BY coalesce(w.written_at, w.created_at) DESC LIMIT ?""",
            (task, excluded_profile, limit),
        ).fetchall()
        return [(json.loads(inputs), output) for inputs, output in rows]

    # -- training runs (one row per task and retrain; the app lists them) --------------------

    def start_training_run(self, profile_id: int, task: str, history_fingerprint: str) -> int:
        with self.transaction():
            return self.conn.execute(
                "INSERT INTO training_runs (profile_id, task, status, history_fingerprint, started_at) VALUES (?, ?, 'running', ?, ?)",
                (profile_id, task, history_fingerprint, utc_now()),
            ).lastrowid

    def training_progress(self, run_id: int, stage: str, fraction: float) -> None:
        with self.transaction():
            self.conn.execute("UPDATE training_runs SET stage = ?, progress = ? WHERE id = ?", (stage, fraction, run_id))

    def finish_training_run(self, run_id: int, status: str, message: str, error: str | None = None) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE training_runs SET status = ?, message = ?, error = ?, progress = CASE WHEN ? THEN 1.0 ELSE progress END, "
                "finished_at = ? WHERE id = ?",
                (status, message, error, status == "done", utc_now(), run_id),
            )

    def training_runs(self, profile_id: int | None = None, limit: int = 20) -> list[dict]:
        """The newest training runs (of one profile), with their stage, progress and outcome."""
        return list(self.db.query(
            """SELECT r.id, p.name AS profile, r.task, r.status, r.stage, r.progress, r.message, r.error,
                      r.started_at, r.finished_at
               FROM training_runs r LEFT JOIN profiles p ON p.id = r.profile_id
               WHERE :profile IS NULL OR r.profile_id = :profile ORDER BY r.id DESC LIMIT :limit""",
            {"profile": profile_id, "limit": limit}))

    def fail_running_training(self, since: str, error: str) -> None:
        """Training runs a crashed process left 'running' since `since` are closed as failed."""
        with self.transaction():
            self.conn.execute(
                "UPDATE training_runs SET status = 'failed', error = ?, message = 'failed; the previous adapter stays active', "
                "finished_at = ? WHERE status = 'running' AND started_at >= ?", (error, utc_now(), since))

    def setting(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


def _fts_query(text: str) -> str:
    """Treat the user's words as plain terms (all must match), not FTS5 syntax."""
    terms = [term.replace('"', '""') for term in text.split()]
    return " ".join(f'"{term}"' for term in terms) or '""'
