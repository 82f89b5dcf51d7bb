"""What an eval run is: its settings, which users it tests, and each test user's history and
questions. The test users are those with the longest histories (the paper's protocol): ranks
skip+1 … skip+users; with folds, fold k of n tests every n-th of them (k, k+n, …) and its TAM
learns from everyone else; a shard i of m runs every m-th user of its fold."""

from __future__ import annotations

from dataclasses import dataclass

from cope_local.drafting.methods import METHODS
from cope_local.errors import CopeError
from cope_local.eval.data import Question


@dataclass
class Settings:
    users: int = 100
    max_profile: int | None = None
    questions_per_user: int = 1
    methods: tuple[str, ...] = tuple(METHODS)
    shard: tuple[int, int] = (0, 1)
    tam_items: int = 2000
    epochs: float | None = None
    lr: float | None = None
    rank: int | None = None
    tune: bool = False
    skip: int = 0  # the longest histories left out of the test users (an earlier run's users)
    fold: tuple[int, int] = (0, 1)
    seed: int = 0  # of the TAM's and the users' adapters (training order, initial weights, negatives)
    edits: int = 0  # simulate a person who rewrote this many drafts (trainer/eval/edits.py)


# Settings a run's shards differ in by design; every other setting must agree for a merge.
PARTITION = ("shard", "fold")


def part(value: str, option: str) -> tuple[int, int]:
    """"i/n" with 0 <= i < n, as --shard and --fold take it."""
    index, _, count = value.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise CopeError(f"{option} {value!r} is not i/n with i < n", hint=f"e.g. {option} 0/3, then 1/3 and 2/3")
    return int(index), int(count)


def ranked(questions: list[Question]) -> list[Question]:
    """Users by history length, longest first (ties by id)."""
    return sorted(questions, key=lambda q: (-len(q.profile), q.id))


def split(questions: list[Question], settings: Settings) -> tuple[list[Question], list[Question]]:
    """(this fold's test users, everyone else): the others' histories train the TAM."""
    order = ranked(questions)
    index, count = settings.fold
    test = order[settings.skip:settings.skip + settings.users][index::count]
    chosen = {q.id for q in test}
    return test, [q for q in order if q.id not in chosen]


def shard_of(test: list[Question], settings: Settings) -> list[Question]:
    index, count = settings.shard
    return test[index::count]


def ranks(test_questions: list[str], settings: dict) -> dict[str, int]:
    """Each test question of a run (or shard, or fold) → its user's rank by history length over
    the whole data set (1: the longest), as results number users (never by name)."""
    skip = settings.get("skip", 0)
    fold, folds = settings.get("fold", (0, 1))
    shard, shards = settings.get("shard", (0, 1))
    return {question: skip + fold + folds * (shard + shards * position) + 1
            for position, question in enumerate(test_questions)}


def ranks_of(result: dict) -> dict[str, int]:
    """`ranks` of a result, or the ranks it records (a partial merge: its users' positions no
    longer give them)."""
    return result.get("ranks") or ranks(result["test_questions"], result["settings"])


def history_and_cases(question: Question, settings: Settings) -> tuple[list[tuple[dict, str, str | None]], list[Question]]:
    """(training history, questions): the official question, plus the newest items of the
    history as extra questions when asked (each answered from older history only)."""
    history = question.profile[-settings.max_profile:] if settings.max_profile else list(question.profile)
    extra = max(0, settings.questions_per_user - 1)
    held, history = (history[len(history) - extra:], history[:len(history) - extra]) if extra else ([], history)
    cases = [question] + [Question(f"{question.id}/h{i}", question.user, inputs, output, [])
                          for i, (inputs, output, _) in enumerate(held)]
    return history, cases
