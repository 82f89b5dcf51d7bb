"""Sent mail from an mbox file: Subject -> the email task's input, the plain-text body (quoted
replies and signature stripped) -> its output."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

from cope_local.drafting.tasks import Task, registry
from cope_local.importers.records import Record, Rejection, UnreadableFile

_QUOTE_INTRO = re.compile(r"^(On .+ wrote:|-----\s*Original Message\s*-----|From: .+)$", re.I)


def looks_like_mbox(head: bytes) -> bool:
    return head.startswith(b"From ")


def split_messages(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(line of the 'From ' separator, raw message) for each message."""
    start_line, current = None, []
    previous_blank = True
    for number, line in enumerate(data.splitlines(keepends=True), start=1):
        if line.startswith(b"From ") and previous_blank:
            if start_line is not None:
                yield start_line, b"".join(current)
            start_line, current = number, []
        elif start_line is not None:
            # mboxrd quoting: ">From " at line start stands for "From ".
            current.append(line[1:] if re.match(rb"^>+From ", line) else line)
        previous_blank = not line.strip()
    if start_line is not None:
        yield start_line, b"".join(current)


def clean_body(text: str) -> str:
    """The author's own words: stop at a quoted reply or at the signature separator."""
    kept = []
    for line in text.replace("\r\n", "\n").split("\n"):
        stripped = line.rstrip()
        if stripped in ("--", "-- ") or line == "-- " or _QUOTE_INTRO.match(stripped.strip()):
            break
        if stripped.lstrip().startswith(">"):
            continue
        kept.append(stripped)
    return "\n".join(kept).strip()


def _plain_text(message: email.message.EmailMessage) -> str | None:
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        return None
    try:
        return part.get_content()
    except (LookupError, UnicodeError, AssertionError):
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", errors="replace")


def parse(path: Path, task: Task | None) -> Iterator[Record | Rejection]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"cannot read the file: {exc.strerror or exc}") from exc
    if not looks_like_mbox(data[:5]):
        raise UnreadableFile("not an mbox file (it must start with a 'From ' line)")
    task = task or registry()["email"]
    if len(task.inputs) != 1:
        raise UnreadableFile(f"task '{task.name}' needs {len(task.inputs)} inputs; an email gives one subject")
    for line, raw in split_messages(data):
        try:
            message = email.message_from_bytes(raw, policy=email.policy.default)
            subject = str(message.get("Subject", "") or "").strip()
            body = _plain_text(message)
        except Exception as exc:  # the email package raises many types on broken headers
            yield Rejection(str(path), line, f"unreadable message: {exc}")
            continue
        if not subject:
            yield Rejection(str(path), line, "message without a Subject")
            continue
        if body is None:
            yield Rejection(str(path), line, "message without a plain-text body")
            continue
        body = clean_body(body)
        if not body:
            yield Rejection(str(path), line, "empty body (only quoted text or a signature)")
            continue
        yield Record(line, {task.inputs[0]: subject}, body, written_at=_date(message), task=task.name)


def _date(message) -> str | None:
    try:
        return parsedate_to_datetime(str(message["Date"])).isoformat()
    except (TypeError, ValueError, IndexError):
        return None
