"""The drafting methods (the paper's names), which adapters each reads, and the contexts (a `Plan`)
a method drafts with given the adapters a person has: `cope draft`, the app, `cope eval` and
tuning all plan here, so that an evaluation measures exactly what users get."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cope_local.engine.engine import Plan
from cope_local.errors import CopeError


@dataclass(frozen=True)
class Method:
    name: str
    label: str  # in result tables
    short: str  # in the app's method menus
    user: str | None = None  # the user adapter it reads: "sft" (OPPU) or "final" (after DPO)
    tam: bool = True  # base + task adapter
    contrast: bool = False  # CoPe decoding against π_base (base + TAM)
    context: str | None = None  # "rag" / "pag": the user's history in the prompt instead of an adapter


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("base", "Base", "Base", tam=False),
    Method("rag", "RAG (BM25 top-3)", "RAG", tam=False, context="rag"),
    Method("pag", "PAG", "PAG", tam=False, context="pag"),
    Method("tam", "TAM", "TAM"),
    Method("oppu", "OPPU", "OPPU", user="sft"),
    Method("oppu_dpo", "OPPU+DPO", "OPPU+DPO", user="final"),
    Method("oppu_cd", "OPPU+CD", "OPPU+CD", user="sft", contrast=True),
    Method("cope", "CoPe (DPO+CD)", "CoPe", user="final", contrast=True),
)}
LABELS = {name: m.label for name, m in METHODS.items()}
DRAFT_METHODS = ("cope", "oppu_dpo", "oppu", "oppu_cd", "tam", "base")  # what drafting offers
@dataclass(frozen=True)
class Adapters:
    """The adapter files a person has for a task (None where missing)."""

    tam: Path | None = None
    sft: Path | None = None
    final: Path | None = None

    def user(self, stage: str) -> Path | None:
        return self.sft if stage == "sft" else self.final


def method(name: str, allowed: Sequence[str] = tuple(METHODS)) -> Method:
    if name not in allowed:
        raise CopeError(f"unknown method '{name}'", hint="use one of: " + ", ".join(allowed))
    return METHODS[name]


def plan(chosen: Method, adapters: Adapters, alpha: float, tau: float, notes: list[str]) -> tuple[Method, Plan]:
    """The contexts a method needs; with adapters missing it degrades (with a note) to what exists.
    Returns the method really used."""
    tam_set = ((adapters.tam, 1.0),) if adapters.tam and chosen.tam else ()
    user = adapters.user(chosen.user) if chosen.user else None
    if chosen.user and user is None:
        fallback = "tam" if adapters.tam else "base"
        notes.append("no adapter trained on your writing yet for this task (run: cope train); drafting with the "
                     + ("task adapter" if adapters.tam else "base model"))
        return plan(METHODS[fallback], adapters, alpha, tau, notes)
    if chosen.name == "tam" and adapters.tam is None:
        notes.append("no task adapter (TAM) for this task; drafting with the base model")
        return plan(METHODS["base"], adapters, alpha, tau, notes)
    if user is None:
        return chosen, Plan(user=tam_set)
    user_set = (*tam_set, (user, 1.0))
    if not chosen.contrast:
        return chosen, Plan(user=user_set)
    if alpha == 0:  # nothing to subtract: one context, decoded as OPPU+DPO decodes
        notes.append("no contrast (alpha = 0): drafting with your adapter alone")
        return chosen, Plan(user=user_set)
    if not tam_set:
        notes.append("no task adapter (TAM): contrasting your adapter against the plain base model")
    return chosen, Plan(user=user_set, base=tam_set, alpha=alpha, tau=tau)
