"""How a draft is decoded: one frozen `DecodingSettings` per draft, made from the paper's defaults
for the task family, what per-person tuning chose (α, τ) and what the caller set, in that order;
and the rules this project adds beside the paper's, which apply to every method alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace

from cope_local.engine.decoding import Sampling
from cope_local.engine.engine import Engine
from cope_local.errors import CopeError


@dataclass(frozen=True)
class DecodingSettings:
    alpha: float  # contrast strength: score = log p_user - alpha log p_base (CoPe)
    tau: float  # plausibility: V_head = {v : p_user(v) >= tau max p_user}
    penalty: float  # repetition penalty on the score a method picks by (log p, or CoPe's score)
    max_tokens: int
    min_tokens: int = 0  # before this many tokens an end-of-text pick is masked out
    no_repeat: int = 0  # a token that would repeat an n-gram of this size is never chosen (0: off)
    one_line: bool = False  # the draft ends at its first line break after some text
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None

    def but(self, **changes) -> DecodingSettings:
        """These settings with `changes` (None leaves a setting as it is); an unknown name is refused."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise CopeError(f"unknown decoding setting {', '.join(unknown)}",
                            hint="settings: " + ", ".join(f.name for f in fields(self)))
        return replace(self, **{name: value for name, value in changes.items() if value is not None})

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def sampling(self) -> Sampling:
        return Sampling(self.temperature, self.top_p, self.penalty)


# The paper's defaults per task family (cope-method.md), with this project's rules beside them:
# - no_repeat 4 (long-form): the penalty alone cannot stop CoPe's loops: it acts inside V_head,
#   and a head of one token has no other choice;
# - one_line (headline, title): the embedded model otherwise runs on into hashtags up to the limit.
FAMILY_DEFAULTS = {
    "lamp": DecodingSettings(alpha=0.3, tau=0.1, penalty=1.0, max_tokens=100, one_line=True),
    "longlamp": DecodingSettings(alpha=0.1, tau=0.1, penalty=7.0, max_tokens=600, no_repeat=4),
}
# Not the paper's: a long-form draft may not end before this share of the person's typical length
# (median of their newest writing). Greedy drafts at penalty 7 stopped at about half of it
# (docs/benchmarks.md, "Long-form drafts at the person's length, without loops").
MIN_SHARE = {"lamp": 0.0, "longlamp": 0.7}
TYPICAL_ITEMS = 50  # the newest writings that set the typical length


def for_family(family: str, tuned: dict | None = None, typical: int | None = None, **overrides) -> DecodingSettings:
    """The family's defaults, then α and τ chosen for this person on their held-out writing
    (`cope train --tune`), then what the caller set. `typical`: the person's typical length in
    tokens, which sets the minimum length."""
    defaults = FAMILY_DEFAULTS[family]
    least = min(int(MIN_SHARE[family] * typical), defaults.max_tokens // 2) if typical else 0
    chosen = {name: tuned[name] for name in ("alpha", "tau") if tuned and name in tuned}
    return defaults.but(min_tokens=least, **chosen).but(**overrides)


def typical_length(engine: Engine, outputs: Sequence[str]) -> int | None:
    """The median length in tokens of a person's newest writing (None without any)."""
    counts = sorted(len(engine.model.tokenize(text, special=False)) for text in outputs[:TYPICAL_ITEMS])
    return counts[len(counts) // 2] if counts else None
