"""Adapter versions in the store: register a new one beside the old, activate it in one
transaction, roll back to the previous one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cope_local.errors import CopeError
from cope_local.store.database import Store, utc_now
from cope_local.store.run_folder import RunFolder


@dataclass(frozen=True)
class AdapterVersion:
    id: int
    profile_id: int | None
    task: str
    kind: str
    version: int
    gguf_path: Path
    peft_path: Path | None
    base_fingerprint: str
    metrics: dict
    active: bool
    created_at: str

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.gguf_path.parent)

    def user_stages(self) -> tuple[Path, Path]:
        """A person's (after SFT, final) adapter files; where no SFT file was kept, the final one
        stands in for it."""
        sft = self.folder.sft
        return (sft if sft.exists() else self.gguf_path), self.gguf_path


_COLUMNS = "id, profile_id, task, kind, version, gguf_path, peft_path, base_fingerprint, metrics, active, created_at"


def _row(row) -> AdapterVersion:
    return AdapterVersion(row[0], row[1], row[2], row[3], row[4], Path(row[5]), Path(row[6]) if row[6] else None,
                          row[7], json.loads(row[8]), bool(row[9]), row[10])


def versions(store: Store, task: str, kind: str, profile_id: int | None) -> list[AdapterVersion]:
    rows = store.conn.execute(
        f"SELECT {_COLUMNS} FROM adapters WHERE task = ? AND kind = ? AND ifnull(profile_id, 0) = ifnull(?, 0) "
        "ORDER BY version DESC",
        (task, kind, profile_id),
    )
    return [_row(r) for r in rows]


def listing(store: Store, profile_id: int | None = None) -> list[tuple[str, AdapterVersion]]:
    """(owner, version) for every adapter, or one person's; TAM adapters belong to no one."""
    where, params = ("WHERE a.profile_id = ?", [profile_id]) if profile_id is not None else ("", [])
    rows = store.conn.execute(
        f"""SELECT ifnull(p.name, '(task adapter)'), {', '.join('a.' + c for c in _COLUMNS.split(', '))}
            FROM adapters a LEFT JOIN profiles p ON p.id = a.profile_id {where}
            ORDER BY 1, a.task, a.kind, a.version DESC""", params)
    return [(row[0], _row(row[1:])) for row in rows]


def active(store: Store, task: str, kind: str, profile_id: int | None) -> AdapterVersion | None:
    return next((v for v in versions(store, task, kind, profile_id) if v.active), None)


def next_version(store: Store, task: str, kind: str, profile_id: int | None) -> int:
    found = versions(store, task, kind, profile_id)
    return found[0].version + 1 if found else 1


def register(store: Store, *, task: str, kind: str, profile_id: int | None, gguf_path: Path, base_fingerprint: str,
             peft_path: Path | None = None, metrics: dict | None = None, activate: bool = False) -> AdapterVersion:
    """Record a new version (inactive unless `activate`); the file must already be complete."""
    with store.transaction():
        version = next_version(store, task, kind, profile_id)
        cursor = store.conn.execute(
            """INSERT INTO adapters (profile_id, task, kind, version, gguf_path, peft_path, base_fingerprint,
               metrics, active, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)""",
            (profile_id, task, kind, version, str(gguf_path), str(peft_path) if peft_path else None,
             base_fingerprint, json.dumps(metrics or {}), utc_now()),
        )
        if activate:
            _activate(store, cursor.lastrowid)
    return get(store, cursor.lastrowid)


def get(store: Store, adapter_id: int) -> AdapterVersion:
    row = store.conn.execute(f"SELECT {_COLUMNS} FROM adapters WHERE id = ?", (adapter_id,)).fetchone()
    if row is None:
        raise CopeError(f"no adapter #{adapter_id}", hint="cope adapters list shows them")
    return _row(row)


def _activate(store: Store, adapter_id: int) -> None:
    chosen = get(store, adapter_id)
    store.conn.execute(
        "UPDATE adapters SET active = 0 WHERE task = ? AND kind = ? AND ifnull(profile_id, 0) = ifnull(?, 0)",
        (chosen.task, chosen.kind, chosen.profile_id),
    )
    store.conn.execute("UPDATE adapters SET active = 1 WHERE id = ?", (adapter_id,))


def activate(store: Store, adapter_id: int) -> AdapterVersion:
    with store.transaction():
        _activate(store, adapter_id)
    return get(store, adapter_id)


def rollback(store: Store, task: str, kind: str, profile_id: int | None) -> AdapterVersion:
    """Make the version before the active one active again."""
    found = versions(store, task, kind, profile_id)
    current = next((i for i, v in enumerate(found) if v.active), None)
    if current is None or current + 1 >= len(found):
        raise CopeError(f"no earlier {kind} adapter for task '{task}' to roll back to", hint="cope adapters list shows the versions")
    return activate(store, found[current + 1].id)
