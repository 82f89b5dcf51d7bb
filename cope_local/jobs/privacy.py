"""What a person can see and do about their data: where it is and how it is protected, a portable
export of everything about them, and forgetting a profile completely."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

from cope_local.errors import CopeError
from cope_local.home import PRIVATE_DIR, PRIVATE_FILE, create_private_file
from cope_local.store import adapter_registry, drafts, sqlcipher
from cope_local.store.database import Store, utc_now

EXPORT_FORMAT = "cope-local-export"


def status(store: Store) -> dict:
    """What is encrypted, where the key lives, and any file or folder others could read."""
    home = store.home
    version = store.conn.execute("PRAGMA cipher_version").fetchone()
    return {
        "database": str(home.db_path),
        "encrypted": not sqlcipher.is_plaintext(home.db_path),
        "cipher": f"SQLCipher {version[0]} (AES-256, HMAC-SHA512 per page)" if version else None,
        "key": store.key.source,
        "readable_by_others": [str(p) for p in _loose(home.root)],
        "network": "none: cope-local opens no sockets; transformers and the hub client run offline",
    }


def _loose(root: Path) -> list[Path]:
    loose = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            continue
        if mode & ~(PRIVATE_DIR if path.is_dir() else PRIVATE_FILE):
            loose.append(path)
    return loose


def export_json(store: Store, out: Path, profile: str | None = None) -> dict:
    """Everything stored about one profile (or all of them) as one JSON file (0600), written
    beside `out` and renamed into place, so a full disk never leaves half a file."""
    names = [profile] if profile else [row["name"] for row in store.profiles()]
    document = {"format": EXPORT_FORMAT, "version": 1, "exported_at": utc_now(),
                "profiles": [_profile(store, name) for name in names]}
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    create_private_file(partial)
    try:
        with partial.open("w", encoding="utf-8") as handle:
            json.dump(document, handle, ensure_ascii=False, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CopeError(f"cannot write {out}: {exc.strerror}", hint="free some space or choose another folder") from exc
    return {"file": str(out), "profiles": len(names),
            "writings": sum(len(p["writings"]) for p in document["profiles"]),
            "drafts": sum(len(p["drafts"]) for p in document["profiles"])}


def _profile(store: Store, name: str) -> dict:
    profile_id = store.profile_id(name)
    row = next(r for r in store.profiles() if r["name"] == name)
    writings = [w.as_dict() for w in store.writings(profile=name, limit=None)]
    adapters = [{"task": version.task, "kind": version.kind, "version": version.version, "active": version.active,
                 "file": str(version.gguf_path), "metrics": version.metrics, "created_at": version.created_at}
                for _, version in adapter_registry.listing(store, profile_id)]
    return {"name": name, "kind": row["kind"], "created_at": row["created_at"],
            "writings": writings, "drafts": drafts.of_profile(store, profile_id), "adapters": adapters}


def forget(store: Store, profile: str) -> dict:
    """Delete a profile with its writings, drafts, training runs and adapter files, then rewrite the
    database so none of it lingers in free pages, the search index or the WAL."""
    profile_id = store.profile_id(profile)
    counts = {table: store.conn.execute(f"SELECT count(*) FROM {table} WHERE profile_id = ?", (profile_id,)).fetchone()[0]
              for table in ("writings", "drafts", "adapters")}
    with store.transaction() as conn:
        conn.execute("DELETE FROM profiles WHERE id = ?", (profile_id,))  # the rest cascades
    shutil.rmtree(store.home.adapters / str(profile_id), ignore_errors=True)
    store.conn.execute("INSERT INTO writings_fts (writings_fts) VALUES ('optimize')")  # drop deleted terms
    store.conn.commit()
    store.conn.execute("VACUUM")
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {"profile": profile, **counts}
