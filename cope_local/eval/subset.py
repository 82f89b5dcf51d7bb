"""`cope eval summary RUN`: a finished run's statistics over some of its users, chosen by rank
(history length over the whole data set, as results number users): the users no drafting rule
was chosen on, or one fold of a merged run — the secondary results a protocol names."""

from __future__ import annotations

from cope_local.drafting.methods import METHODS
from cope_local.errors import CopeError
from cope_local.eval.protocol import ranks_of
from cope_local.eval.reports import question_of, summarise


def rank_range(value: str) -> tuple[int, int]:
    """"A-B" (ranks A to B, both included) as --ranks takes it."""
    low, _, high = value.partition("-")
    if not (low.isdigit() and high.isdigit() and 1 <= int(low) <= int(high)):
        raise CopeError(f"--ranks {value!r} is not A-B with 1 <= A <= B", hint="e.g. --ranks 16-60")
    return int(low), int(high)


def users_of(result: dict, within: tuple[int, int] | None = None, fold: tuple[int, int] | None = None) -> list[str]:
    """The run's test questions (one per user) whose rank is `within` (A, B) and falls in `fold`
    (k, n): the users `cope eval --fold k/n` tests, ranks skip+k+1, skip+k+1+n, …"""
    rank = ranks_of(result)
    skip = result["settings"].get("skip", 0)
    chosen = [question for question in result["test_questions"]
              if (within is None or within[0] <= rank[question] <= within[1])
              and (fold is None or (rank[question] - skip - 1) % fold[1] == fold[0])]
    if not chosen:
        raise CopeError(f"no user of this run has ranks {within} in fold {fold}",
                        hint=f"its users' ranks: {min(rank.values())}-{max(rank.values())}")
    return chosen


def summary_of(result: dict, users: list[str]) -> dict:
    """`summarise` (by-user CIs first) over the answers of `users` alone."""
    rows = [{**row, "key": row["id"]} for row in result["questions"]
            if question_of(row["id"], users) in users]
    return summarise(rows, [m for m in METHODS if m in result["settings"]["methods"]], users)
