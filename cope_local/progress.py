"""How a long job reports and how it is stopped, the same for drafts, imports, training and eval:
a `Progress` to the caller's `report`, and one `Cancel` token that the person's Cancel sets and
the job checks (a draft at its next token, an import before it writes, training and eval at
their next report), which raises `Cancelled` saying what was kept."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from cope_local.errors import CopeError


@dataclass(frozen=True)
class Progress:
    stage: str
    step: int
    total: int
    loss: float | None = None


Report = Callable[[Progress], None]


def ignore(progress: Progress) -> None:
    """The report of a caller that does not watch."""


class Cancelled(CopeError):
    """The person stopped the job; the message says what was kept."""


class Cancel:
    """One job's stop request: set from any thread, checked by the job where stopping is safe."""

    def __init__(self) -> None:
        self._requested = threading.Event()

    def set(self) -> None:
        self._requested.set()

    def is_set(self) -> bool:
        return self._requested.is_set()

    def check(self, kept: str) -> None:
        """Raise Cancelled (its message: `kept`, what the stop leaves behind) if a stop was asked for."""
        if self.is_set():
            raise Cancelled(kept)

    def reporting(self, report: Report, kept: str) -> Report:
        """`report`, checking this token first: a job that reports stops at its next report."""
        def checked(progress: Progress) -> None:
            self.check(kept)
            report(progress)
        return checked
