"""How a long job reports and how it is stopped, the same for import, draft, train and eval:
a `Progress` to the caller's `report`, and `Cancelled` when the person asked to stop (raised by
the caller's report callback, or by a job that polls the person's request)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import CopeError


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
