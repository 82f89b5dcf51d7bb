"""How one token is chosen from logits: greedy or sampled, plain or contrastive (CoPe, paper Eq. 1-3).

V_head = {v : p_u(v) >= tau * max p_u}, which on raw logits is l_u(v) >= max l_u + ln tau.
Without a repetition penalty, argmax over V_head of log p_u - alpha log p_b equals the argmax of
l_u - alpha l_b (the log-sum-exps are constants), so no softmax is needed per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    penalty: float = 1.0  # HF-style repetition penalty on already generated tokens


@dataclass(frozen=True)
class Choice:
    token: int
    head_size: int | None = None  # |V_head| (CoPe only)
    user_top: int | None = None  # π_user's own argmax
    reward: float | None = None  # implicit reward log π_user(y) - log π_base(y), when π_base was evaluated

    @property
    def contrast_changed(self) -> bool:
        return self.user_top is not None and self.user_top != self.token


def log_sum_exp(logits: np.ndarray) -> float:
    top = float(logits.max())
    return top + math.log(float(np.exp(logits - top, dtype=np.float64).sum()))


def penalise(scores: np.ndarray, candidates: np.ndarray, generated: set[int], penalty: float) -> np.ndarray:
    """HF RepetitionPenaltyLogitsProcessor on the candidates already generated."""
    if penalty == 1.0 or not generated:
        return scores
    scores = scores.copy()
    seen = np.isin(candidates, list(generated))
    scores[seen] = np.where(scores[seen] > 0, scores[seen] / penalty, scores[seen] * penalty)
    return scores


def pick(scores: np.ndarray, candidates: np.ndarray, sampling: Sampling, rng: np.random.Generator | None) -> int:
    """Argmax, or a temperature / top-p sample, of `scores` over `candidates`."""
    if sampling.temperature <= 0 or rng is None:
        return int(candidates[int(np.argmax(scores))])
    scaled = scores.astype(np.float64) / sampling.temperature
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    order = _nucleus(probs, sampling.top_p) if sampling.top_p < 1.0 else np.argsort(-probs, kind="stable")
    kept = probs[order] / probs[order].sum()
    return int(candidates[order[rng.choice(len(order), p=kept)]])


def _nucleus(probs: np.ndarray, top_p: float) -> np.ndarray:
    """The most probable tokens whose mass reaches top_p, most probable first (ties by index):
    the same as cutting a full stable sort, but sorting only the top k (a full sort of the
    vocabulary was most of the time of sampling negatives)."""
    k = 1024
    while True:
        if k < len(probs):
            top = np.sort(np.argpartition(-probs, k - 1)[:k])  # index order, so ties sort as a full sort does
            order = top[np.argsort(-probs[top], kind="stable")]
        else:
            order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        if cumulative[-1] >= top_p or k >= len(probs):
            return order[: int(np.searchsorted(cumulative, top_p)) + 1]
        k *= 4


def choose_plain(logits: np.ndarray, generated: set[int], sampling: Sampling, rng=None) -> Choice:
    """Greedy or sampled; a repetition penalty acts on log p, as on CoPe's score (log p_u - α log p_b)
    with α = 0, so every method is penalised by one rule."""
    if sampling.penalty == 1.0 and sampling.temperature <= 0:
        return Choice(int(np.argmax(logits)))
    everything = np.arange(logits.shape[0])
    scores = penalise(logits.astype(np.float64) - log_sum_exp(logits), everything, generated, sampling.penalty)
    return Choice(pick(scores, everything, sampling, rng))


def head(user_logits: np.ndarray, tau: float) -> np.ndarray:
    return np.flatnonzero(user_logits >= float(user_logits.max()) + math.log(tau))


def choose_contrast(
    user_logits: np.ndarray,
    base_logits: np.ndarray,
    candidates: np.ndarray,
    alpha: float,
    generated: set[int],
    sampling: Sampling,
    rng=None,
) -> Choice:
    """Pick among V_head by log p_u - alpha log p_b; also report the implicit reward of the pick."""
    lse_user, lse_base = log_sum_exp(user_logits), log_sum_exp(base_logits)
    user = user_logits[candidates].astype(np.float64) - lse_user
    base = base_logits[candidates].astype(np.float64) - lse_base
    scores = penalise(user - alpha * base, candidates, generated, sampling.penalty)
    token = pick(scores, candidates, sampling, rng)
    at = int(np.flatnonzero(candidates == token)[0])
    user_top = int(candidates[int(np.argmax(user))])
    return Choice(token, len(candidates), user_top, float(user[at] - base[at]))


def next_choice(user_logits: np.ndarray, pick: Callable[[np.ndarray], Choice], banned: list[int], may_end: bool,
                is_end: Callable[[int], bool]) -> Choice:
    """One step's choice by `pick` (plain or contrastive): `banned` tokens (an n-gram the draft
    already holds) never; end-of-text only when `may_end`, else it is masked and the step chosen again."""
    if banned:
        user_logits = user_logits.copy()
        user_logits[banned] = -np.inf
    while True:
        choice = pick(user_logits)
        if may_end or not is_end(choice.token):
            return choice
        user_logits = user_logits.copy()
        user_logits[choice.token] = -np.inf
