"""The drafts table: every draft the engine produced, which adapter version proposed it, and what
the person did with it — accepted as drafted, accepted as edited (both become history for the
next retrain) or rejected. An edited or rejected draft and the text the person kept instead form a
preference pair (chosen: what they kept; rejected: what was proposed) for the next retrain's DPO."""

from __future__ import annotations

import json

from cope_local.errors import CopeError
from cope_local.store.database import Store, utc_now


def add(store: Store, profile_id: int, task: str, inputs: dict[str, str], method: str, params: dict, text: str,
        adapter_id: int | None = None) -> int:
    """Record a draft (and the id of the user adapter version that proposed it); its id."""
    with store.transaction():
        cursor = store.conn.execute(
            """INSERT INTO drafts (profile_id, task, inputs, method, params, text, created_at, adapter_id)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            (profile_id, task, json.dumps(inputs, ensure_ascii=False, sort_keys=True), method, json.dumps(params), text,
             utc_now(), adapter_id),
        )
    return cursor.lastrowid


def _draft(store: Store, draft_id: int):
    row = store.conn.execute("SELECT profile_id, task, inputs, text, accepted_at, rejected_at FROM drafts WHERE id = ?",
                             (draft_id,)).fetchone()
    if row is None:
        raise CopeError(f"no draft #{draft_id}", hint="see the id printed by cope draft")
    return row


def accept(store: Store, draft_id: int, text: str | None = None, written_at: str | None = None) -> int:
    """Keep a draft (as generated, or as edited: `text`) as the person's writing (written now,
    unless `written_at` says when); the writing's id. A draft rejected before is accepted all the
    same (the person changed their mind)."""
    with store.transaction():
        return mark_accepted(store, draft_id, text, written_at)


def mark_accepted(store: Store, draft_id: int, text: str | None, written_at: str | None) -> int:
    """`accept` inside a transaction the caller holds (to accept several drafts all or none)."""
    profile_id, task, inputs, generated, _, _ = _draft(store, draft_id)
    final = (text if text is not None else generated).strip()
    if not final:
        raise CopeError("an accepted draft cannot be empty", hint="give the text to keep: cope accept ID --text '…'")
    writing_id = store.add_writing(profile_id, task, json.loads(inputs), final, origin="draft",
                                   written_at=written_at or utc_now())
    if writing_id is None:  # the same text is already history
        writing_id = store.conn.execute(
            "SELECT id FROM writings WHERE profile_id = ? AND task = ? AND output = ? ORDER BY id DESC",
            (profile_id, task, final),
        ).fetchone()[0]
    store.conn.execute(
        "UPDATE drafts SET accepted_text = ?, accepted_at = ?, writing_id = ?, rejected_at = NULL WHERE id = ?",
        (final, utc_now(), writing_id, draft_id),
    )
    return writing_id


def reject(store: Store, draft_id: int) -> None:
    """Mark a draft as not like the person: with the text they keep for the same inputs (a draft
    they accept, or their own writing), it becomes a preference pair."""
    accepted_at = _draft(store, draft_id)[4]
    if accepted_at:
        raise CopeError(f"draft #{draft_id} was accepted", hint="edit your writing instead: cope history")
    with store.transaction():
        store.conn.execute("UPDATE drafts SET rejected_at = ? WHERE id = ?", (utc_now(), draft_id))


def outcome(accepted_text: str | None, rejected_at: str | None, text: str) -> str:
    """What the person did: "accepted", "edited", "rejected" or "open"."""
    if accepted_text is not None:
        return "accepted" if accepted_text == text.strip() else "edited"
    return "rejected" if rejected_at else "open"


def of_profile(store: Store, profile_id: int) -> list[dict]:
    """A profile's drafts, oldest first, as stored with what became of them (for `cope export`)."""
    rows = [dict(r) for r in store.db.query(
        "SELECT id, task, inputs, method, params, text, accepted_text, accepted_at, rejected_at, adapter_id, created_at "
        "FROM drafts WHERE profile_id = ? ORDER BY id", [profile_id])]
    return [{**row, "outcome": outcome(row["accepted_text"], row["rejected_at"], row["text"])} for row in rows]


def preference_pairs(store: Store, profile_id: int, task: str) -> list[dict]:
    """The person's real preference pairs for `task`, newest first: each edited draft (chosen: the
    edited text) and each rejected draft whose inputs the person kept a text for since (a draft
    they accepted, or a writing of theirs with the same inputs), against what was proposed."""
    kept = {}  # inputs -> the newest text the person kept for them
    for inputs, output in store.conn.execute(
            "SELECT inputs, output FROM writings WHERE profile_id = ? AND task = ? "
            "ORDER BY coalesce(written_at, created_at), id", (profile_id, task)):
        kept[_key(inputs)] = output
    pairs, seen = [], set()
    for draft_id, inputs, text, accepted_text, rejected_at in store.conn.execute(
            "SELECT id, inputs, text, accepted_text, rejected_at FROM drafts WHERE profile_id = ? AND task = ? "
            "AND (rejected_at IS NOT NULL OR accepted_text IS NOT NULL) ORDER BY id DESC", (profile_id, task)):
        chosen = accepted_text if accepted_text is not None else kept.get(_key(inputs)) if rejected_at else None
        rejected = text.strip()
        if chosen is None or chosen.strip() == rejected or not rejected or (inputs, chosen, rejected) in seen:
            continue
        seen.add((inputs, chosen, rejected))
        pairs.append({"draft_id": draft_id, "inputs": json.loads(inputs), "chosen": chosen.strip(), "rejected": rejected})
    return pairs


def _key(inputs: str) -> str:
    """One spelling of a JSON inputs object (drafts and writings store theirs sorted by key)."""
    return json.dumps(json.loads(inputs), ensure_ascii=False, sort_keys=True)
