"""Per-user tuning on the user's own held-out writing. The paper fixes one setting for every user
and names that as a limitation; here the newest ~10 % of a person's history (at least 3 items)
is held out, never trained on, and chooses the SFT learning rate (from a small grid) by ROUGE-L
of drafts against what the person really wrote, and CoPe's α and τ by how often CoPe's decoding
rule, teacher-forced on what the person really wrote, chooses their next token (two batched
passes per item and numpy for every grid point, where drafting the grid took 130 long drafts).

α and τ are chosen by the one-standard-error rule (Hastie et al., *Elements of Statistical
Learning* §7.10): the family's fallback if its validation score is within one standard error of
the best, else the least contrast that is. About ten held-out items cannot tell small
differences apart, and taking the best of 13 points on them chose strong contrasts that then
lost on new items (docs/benchmarks.md, HuffPost 18 × 5: users tuned to α = 1 lost 3 times of 4
against OPPU+DPO)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import fmean, stdev

import numpy as np

from cope_local.drafting.draft import prepare
from cope_local.drafting.methods import Adapters
from cope_local.drafting.prompts import prompt_tokens
from cope_local.drafting.settings import FAMILY_DEFAULTS, DecodingSettings, for_family, typical_length
from cope_local.drafting.tasks import Task
from cope_local.engine.decoding import choose_contrast, choose_plain, head, next_choice
from cope_local.engine.engine import Engine, NgramBlock
from cope_local.engine.loader import Loading
from cope_local.engine.sampling import continuation_logits
from cope_local.eval.metrics import rouge
from cope_local.progress import Progress, Report, ignore
from cope_local.store.run_folder import RunFolder

LR_GRID = (1e-5, 1e-4, 3e-4)
ALPHA_GRID = (0.0, 0.1, 0.3, 0.5, 1.0)  # 0: no contrast, the user's adapter alone (as OPPU+DPO)
TAU_GRID = (0.05, 0.1, 0.3)
RULE = "one-se, teacher-forced"  # how α/τ are chosen; an adapter tuned under an earlier rule is retuned (decoding only)
# What the rule falls back to where validation cannot tell, from what contrast did on average in
# this project's evals (docs/benchmarks.md): on headlines it lowered ROUGE-L (HuffPost 18 × 5:
# OPPU+CD − OPPU −0.013, CI below zero), so no contrast; on long-form it raised it (mpv 15 × 5:
# +0.015, CI above zero), so the paper's α. τ: the family's default.
FALLBACK_ALPHA = {"lamp": 0.0, "longlamp": FAMILY_DEFAULTS["longlamp"].alpha}
VALIDATION_SHARE = 0.1
MIN_VALIDATION = 3
CONTRAST_ITEMS = 12  # validation items the α/τ grid is scored on


def split(rows: list, share: float = VALIDATION_SHARE, minimum: int = MIN_VALIDATION) -> tuple[list, list]:
    """(training, validation) of a history listed newest first: the newest items validate."""
    count = max(minimum, round(len(rows) * share))
    return rows[count:], rows[:count]


def best(scores: dict, default) -> object:
    """The grid point with the highest score; on a tie the default (the paper's) wins, then the
    earlier point."""
    top = max(scores.values())
    winners = [point for point, score in scores.items() if score == top]
    return default if default in winners else winners[0]


def contrast_grid(family: str) -> list[tuple[float, float]]:
    """(α, τ) points in the order the rule prefers them: the family's fallback, then the least
    contrast first (smaller α, then larger τ: a smaller head V_head). α = 0 is one point: with
    nothing subtracted, τ changes nothing."""
    tau = FAMILY_DEFAULTS[family].tau
    points = [(0.0, tau)] + [(alpha, t) for alpha in ALPHA_GRID if alpha for t in sorted(TAU_GRID, reverse=True)]
    fallback = (FALLBACK_ALPHA[family], tau)
    return [fallback] + [point for point in points if point != fallback]


def first_within_one_se(per_item: dict) -> object:
    """The first point (in the grid's order) whose mean is within one standard error of the
    best's; the standard error is that of the per-item differences. The best is always within
    its own, so there is always one."""
    means = {point: fmean(scores) for point, scores in per_item.items()}
    top = max(means, key=means.get)

    def error(point) -> float:
        differences = [a - b for a, b in zip(per_item[top], per_item[point])]
        return stdev(differences) / len(differences) ** 0.5 if len(differences) > 1 else 0.0

    return next(point for point in per_item if means[point] >= means[top] - error(point))


@dataclass
class Validator:
    """Drafts the validation items with llama.cpp, exactly as `cope draft` would, and scores them."""

    model_path: Path
    loading: Loading | None
    task: Task
    validation: list  # (inputs, output)
    history: list[str]  # the outputs trained on, newest first: they set the typical draft length
    report: Report = ignore

    def rouge_l(self, adapters: Adapters, method: str = "oppu") -> float:
        """Mean ROUGE-L of the validation drafts of `method` with `adapters`."""
        with Engine(self.model_path, loading=self.loading) as engine:
            return fmean(self._scores(engine, [(method, adapters, {})], self.validation)[0])

    def _scores(self, engine: Engine, drafts: list[tuple[str, Adapters, dict]], items: list) -> list[list[float]]:
        """ROUGE-L of each of `items` drafted as each (method, adapters, settings) says, on one loaded
        model, reported per draft: the α/τ grid of long-form drafts takes minutes, and a report is
        where the person's cancel takes effect."""
        total = len(drafts) * len(items)
        self.report(Progress("tuning", 0, total))
        scores = []
        for method, adapters, settings in drafts:
            row = []
            for inputs, output in items:
                draft = prepare(engine, self.task, inputs, method, adapters, history=self.history, **settings)
                row.append(rouge(draft.complete(), output)[1])
                self.report(Progress("tuning", len(scores) * len(items) + len(row), total))
            scores.append(row)
        return scores

    def contrast(self, tam: Path | None, user: Path) -> dict:
        """α and τ for CoPe with the final adapter: each point scored by `agreement` on each
        validation item (π_user's and π_base's logits along what the person wrote, computed once
        per item), chosen by the one-standard-error rule; reported per item."""
        points, items = contrast_grid(self.task.family), self.validation[:CONTRAST_ITEMS]
        per_item = {point: [] for point in points}
        self.report(Progress("tuning", 0, len(items)))
        with Engine(self.model_path, loading=self.loading) as engine:
            settings = for_family(self.task.family, typical=typical_length(engine, self.history))
            tam_set = ((tam, 1.0),) if tam else ()
            for done, (inputs, output) in enumerate(items, 1):
                prompt = prompt_tokens(engine, self.task, inputs, settings.max_tokens, [])
                gold = response_tokens(engine, output, settings.max_tokens)
                users = continuation_logits(engine.context((*tam_set, (user, 1.0))), prompt, gold)
                bases = continuation_logits(engine.context(tam_set), prompt, gold)
                for alpha, tau in points:
                    per_item[(alpha, tau)].append(agreement(users, bases, gold, settings.but(alpha=alpha, tau=tau),
                                                            engine.model.is_end))
                self.report(Progress("tuning", done, len(items)))
        alpha, tau = first_within_one_se(per_item)
        return {"alpha": alpha, "tau": tau, "rule": RULE,
                "agreement": {f"{a:g}/{t:g}": round(fmean(s), 4) for (a, t), s in per_item.items()}}


def response_tokens(engine: Engine, output: str, limit: int) -> list[int]:
    """What the person wrote as the tokens a draft of it would be: whole with the end token when
    both fit the drafting limit, else cut to the limit (as training's responses, trainer.data)."""
    tokens = engine.model.tokenize(output.strip(), special=False)
    return tokens + [engine.model.eos] if len(tokens) < limit else tokens[:limit]


def agreement(users: np.ndarray, bases: np.ndarray, gold: list[int], settings: DecodingSettings, is_end) -> float:
    """The share of the person's tokens that greedy decoding under `settings` would choose after
    the person's own earlier tokens: the drafting rule at every step (penalty, n-gram block,
    minimum length; CoPe's head and contrast where α > 0), with `users[t]`/`bases[t]` the
    logits before token t."""
    generated, block, hits = set(), NgramBlock(settings.no_repeat), 0
    for t, token in enumerate(gold):
        if settings.alpha:
            def pick(logits, t=t):
                return choose_contrast(logits, bases[t], head(logits, settings.tau), settings.alpha, generated,
                                       settings.sampling)
        else:
            def pick(logits):
                return choose_plain(logits, generated, settings.sampling)
        hits += next_choice(users[t], pick, block.banned(), t >= settings.min_tokens, is_end).token == token
        generated.add(token)
        block.add(token)
    return hits / len(gold)


class Record:
    """The tuning results of one retrain, kept in its work folder so a killed run resumes."""

    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.exists() else {}

    def __getitem__(self, key: str):
        return self.data.get(key)

    def __setitem__(self, key: str, value) -> None:
        self.data[key] = value
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(self.data))
        partial.replace(self.path)


def learning_rate(base, task: Task, rows: list, spec, hyper, folder: RunFolder, tam: Path | None, validator: Validator,
                  record: Record, report) -> float:
    """Train the user's SFT adapter at each grid learning rate, draft the validation items with
    it (OPPU, greedy), keep the best: its adapter becomes the run's SFT result for the stages
    after it. Finished grid points survive a kill (`record`)."""
    scores = dict(record["lr_rougeL"] or {})
    for lr in LR_GRID:
        if f"{lr:g}" in scores:
            continue
        trial = folder.learning_rate(lr)
        trial.path.mkdir(exist_ok=True)
        model = base.user_model(spec)
        base.train_sft(model, task, rows, trial, replace(hyper, lr=lr), report)
        base.model = model.unload()  # the next grid point starts from the same weights
        scores[f"{lr:g}"] = round(validator.rouge_l(Adapters(tam, trial.sft)), 4)
        record["lr_rougeL"] = scores
    chosen = float(best({float(k): v for k, v in scores.items()}, hyper.lr))
    trial = folder.learning_rate(chosen)
    shutil.copytree(trial.sft_peft, folder.sft_peft, dirs_exist_ok=True)
    shutil.copyfile(trial.sft, folder.sft)
    return chosen
