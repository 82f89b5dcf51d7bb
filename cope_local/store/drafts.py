"""The drafts table: every draft the engine produced, and what the person did with it (an accepted
draft, as drafted or as edited, becomes history for the next retrain)."""

from __future__ import annotations

import json

from cope_local.errors import CopeError
from cope_local.store.database import Store, utc_now


def add(store: Store, profile_id: int, task: str, inputs: dict[str, str], method: str, params: dict, text: str) -> int:
    """Record a draft; its id."""
    with store.transaction():
        cursor = store.conn.execute(
            """INSERT INTO drafts (profile_id, task, inputs, method, params, text, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (profile_id, task, json.dumps(inputs, ensure_ascii=False), method, json.dumps(params), text, utc_now()),
        )
    return cursor.lastrowid


def accept(store: Store, draft_id: int, text: str | None = None) -> int:
    """Keep a draft (as generated, or as edited: `text`) as the person's writing; the writing's id."""
    row = store.conn.execute("SELECT profile_id, task, inputs, text FROM drafts WHERE id = ?", (draft_id,)).fetchone()
    if row is None:
        raise CopeError(f"no draft #{draft_id}", hint="see the id printed by cope draft")
    profile_id, task, inputs, generated = row
    final = (text if text is not None else generated).strip()
    if not final:
        raise CopeError("an accepted draft cannot be empty", hint="give the text to keep: cope accept ID --text '…'")
    with store.transaction():
        writing_id = store.add_writing(profile_id, task, json.loads(inputs), final, origin="draft", written_at=utc_now())
        if writing_id is None:  # the same text is already history
            writing_id = store.conn.execute(
                "SELECT id FROM writings WHERE profile_id = ? AND task = ? AND output = ? ORDER BY id DESC",
                (profile_id, task, final),
            ).fetchone()[0]
        store.conn.execute(
            "UPDATE drafts SET accepted_text = ?, accepted_at = ?, writing_id = ? WHERE id = ?",
            (final, utc_now(), writing_id, draft_id),
        )
    return writing_id


def of_profile(store: Store, profile_id: int) -> list[dict]:
    """A profile's drafts, oldest first, as stored (for `cope export`)."""
    return [dict(r) for r in store.db.query(
        "SELECT task, inputs, method, params, text, accepted_text, accepted_at, created_at "
        "FROM drafts WHERE profile_id = ? ORDER BY id", [profile_id])]
