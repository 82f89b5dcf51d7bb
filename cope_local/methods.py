"""The one drafting policy: the methods, which adapters each reads, decoding defaults per task
family, the repetition-penalty rule, the prompt (rendered and fitted to the context) and tokens
to text. `cope draft`, the app, `cope eval` and the trainer all ask here, so that an evaluation
measures exactly what users get.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from .engine.decoding import Sampling
from .engine.engine import Engine, Plan, Step
from .errors import CopeError
from .prompts import render_prompt
from .tasks import Task


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
# Paper defaults per task family (cope-method.md).
CONTEXT_TOKENS = 2048  # the drafting context; training fits its prompts to the same budget
FAMILY_DEFAULTS = {
    "lamp": {"alpha": 0.3, "tau": 0.1, "penalty": 1.0, "max_tokens": 100},
    "longlamp": {"alpha": 0.1, "tau": 0.1, "penalty": 7.0, "max_tokens": 600},
}
# Not the paper's: a long-form draft may not end before this share of the person's typical length
# (median of their newest writing). Greedy drafts at penalty 7 stopped at about half of it
# (docs/benchmarks.md, "Long-form drafts at the person's length, without loops").
MIN_SHARE = {"lamp": 0.0, "longlamp": 0.7}
# Not the paper's either: a long-form draft never repeats a run of 4 tokens. The penalty alone
# cannot stop CoPe's loops: it acts inside V_head, and a head of one token has no other choice.
NO_REPEAT = {"lamp": 0, "longlamp": 4}
# Not the paper's: a headline or title is one line, so its draft ends at the first line break
# after some text; the embedded model otherwise runs on into hashtags up to the limit.
ONE_LINE = {"lamp": True, "longlamp": False}
TYPICAL_ITEMS = 50


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


def params(family: str, tuned: dict | None = None, typical: int | None = None, **overrides) -> dict:
    """Decoding parameters: the family's defaults (the paper's), then α and τ chosen for this
    person on their held-out writing (`cope train --tune`), then what the caller set. The
    family's repetition penalty (long-form: 7), n-gram block and minimum length (from `typical`,
    the person's typical length in tokens) apply to every method alike; the penalty acts on the score a
    method picks by: log p for plain decoding, the contrast score for CoPe (engine.decoding)."""
    defaults = FAMILY_DEFAULTS[family]
    least = min(int(MIN_SHARE[family] * typical), defaults["max_tokens"] // 2) if typical else 0
    result = {**defaults, "min_tokens": least, "no_repeat": NO_REPEAT[family], "one_line": ONE_LINE[family],
              "temperature": 0.0, "top_p": 1.0, "seed": None}
    result.update({k: tuned[k] for k in ("alpha", "tau") if tuned and k in tuned})
    result.update({k: v for k, v in overrides.items() if v is not None})
    return result


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


def typical_length(engine: Engine, outputs: Sequence[str]) -> int | None:
    """The median length in tokens of a person's newest writing (None without any)."""
    counts = sorted(len(engine.model.tokenize(text, special=False)) for text in outputs[:TYPICAL_ITEMS])
    return counts[len(counts) // 2] if counts else None


def prompt_budget(max_tokens: int, n_ctx: int = CONTEXT_TOKENS) -> int:
    """Tokens a prompt may take: the context less the room kept for the draft."""
    return n_ctx - min(max_tokens, n_ctx // 2)


def fit_prompt(tokenize: Callable[[str], list[int]], render: Callable[[dict[str, str]], str], task: Task,
               inputs: dict[str, str], budget: int, notes: list[str]) -> list[int]:
    """The rendered prompt's tokens in at most `budget`; an input too long is cut (its longest
    field, proportionally, then again if needed), never the instruction. Drafting (llama.cpp's
    tokenizer) and training (the HF tokenizer) both come here, so they cut alike."""
    inputs = dict(inputs)
    for _ in range(8):
        tokens = tokenize(render(inputs))
        if len(tokens) <= budget:
            return tokens
        longest = max(task.inputs, key=lambda name: len(inputs[name]))
        keep = int(len(inputs[longest]) * budget / len(tokens) * 0.9)
        if keep < 1:
            break
        inputs[longest] = inputs[longest][:keep]
        if not any("shortened" in n for n in notes):
            notes.append(f"the {task.label(longest)} was too long for the model's context and was shortened")
    raise CopeError("the prompt does not fit the model's context", hint="shorten the input")


def prompt_tokens(engine: Engine, task: Task, inputs: dict[str, str], max_tokens: int, notes: list[str],
                  preamble: str = "") -> list[int]:
    """The prompt's tokens for drafting, rendered as training renders it (the model's chat
    template with its BOS and EOS), `preamble` (RAG/PAG) before the instruction."""
    model = engine.model
    template, bos, eos = model.chat_template(), model.special_text(model.bos), model.special_text(model.eos)
    return fit_prompt(engine.tokenize_prompt, lambda fitted: render_prompt(task, fitted, template, bos, eos, preamble),
                      task, inputs, prompt_budget(max_tokens, engine.n_ctx), notes)


def steps(engine: Engine, prompt: Sequence[int], plan: Plan, params: dict, **controls) -> Iterator[Step]:
    """Generate under `params` (sampling, penalty and stop rules); `controls`: cancel, schedule."""
    sampling = Sampling(params["temperature"], params["top_p"], params["penalty"])
    stream = engine.generate(prompt, plan, params["max_tokens"], sampling, seed=params["seed"],
                             min_tokens=params["min_tokens"], no_repeat=params["no_repeat"], **controls)
    return until_line_break(stream) if params["one_line"] else stream


def until_line_break(stream: Iterator[Step]) -> Iterator[Step]:
    """The steps up to the first line break after some text. A token that holds the break keeps
    its text before it ("?\n" from a Llama-3 tokenizer); generation stops there."""
    written = ""
    with closing(stream):  # frees the engine at once, not when the generator is collected
        for step in stream:
            written += step.text
            if "\n" in written.lstrip():
                if step.text.split("\n", 1)[0].strip():
                    yield step
                return
            yield step


def first_line(text: str) -> str:
    """A sampled text as a one-line task's draft would end (until_line_break, on text)."""
    return text.strip().split("\n", 1)[0].strip()


def drafted(engine: Engine, prompt: Sequence[int], plan: Plan, params: dict) -> str:
    """The whole draft of `prompt` under `plan` and `params`, as text."""
    return text_of(engine, [s.token for s in steps(engine, prompt, plan, params)])


def text_of(engine: Engine, tokens: Sequence[int]) -> str:
    """Generated tokens as the text a person reads."""
    return b"".join(engine.model.piece(t) for t in tokens).decode("utf-8", errors="replace").strip()
