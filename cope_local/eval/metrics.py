"""ROUGE as the paper's code computes it, and the paired bootstrap."""

from __future__ import annotations

from functools import cache

import numpy as np


def rouge(prediction: str, gold: str) -> tuple[float, float]:
    """ROUGE-1 and ROUGE-L F1, without stemming, as the paper's code."""
    scores = _scorer().score(gold, prediction)
    return scores["rouge1"].fmeasure, scores["rougeL"].fmeasure


@cache
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False)


def paired_bootstrap(a: list[float], b: list[float], rounds: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a - b and its 95 % CI over questions resampled with replacement."""
    diff = np.asarray(a) - np.asarray(b)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(rounds, len(diff)))].mean(axis=1)
    return float(diff.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def by_user_bootstrap(differences: dict[str, list[float]], rounds: int = 2000,
                      seed: int = 0) -> tuple[float, float, float]:
    """Mean over users of each user's mean difference, and its 95 % CI over USERS resampled with
    replacement. A user's questions share one adapter, one tuning and one TAM, so they are not
    independent: the user is the unit (the question-level bootstrap above understates the spread)."""
    per_user = np.asarray([np.mean(values) for values in differences.values()])
    rng = np.random.default_rng(seed)
    means = per_user[rng.integers(0, len(per_user), size=(rounds, len(per_user)))].mean(axis=1)
    return float(per_user.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def wilcoxon_signed_rank(values: list[float]) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test that `values` (paired differences, here
    one per user) are centred on zero: zeros dropped, tied magnitudes given their mean rank, the
    null distribution of W+ computed exactly (given the ties) over all 2^n sign patterns."""
    nonzero = np.asarray([v for v in values if v != 0.0], dtype=np.float64)
    if len(nonzero) == 0:
        return 1.0
    magnitudes = np.abs(nonzero)
    order = np.argsort(magnitudes, kind="stable")
    ranks = np.empty(len(nonzero))
    ranks[order] = np.arange(1, len(nonzero) + 1)
    for magnitude in np.unique(magnitudes):  # ties: their mean rank
        tied = magnitudes == magnitude
        ranks[tied] = ranks[tied].mean()
    doubled = np.rint(2 * ranks).astype(int)  # mean ranks are multiples of 1/2
    observed = int(doubled[nonzero > 0].sum())
    distribution = np.zeros(int(doubled.sum()) + 1)
    distribution[0] = 1.0
    for rank in doubled:  # each rank joins W+ or not, with probability 1/2
        shifted = np.zeros_like(distribution)
        shifted[rank:] = distribution[:len(distribution) - rank]
        distribution = 0.5 * (distribution + shifted)
    lower, upper = distribution[:observed + 1].sum(), distribution[observed:].sum()
    return float(min(1.0, 2 * min(lower, upper)))
