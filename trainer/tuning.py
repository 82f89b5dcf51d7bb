"""Per-user tuning on the user's own held-out writing. The paper fixes one setting for every user
and names that as a limitation; here the newest ~10 % of a person's history (at least 3 items)
is held out, never trained on, and chooses the SFT learning rate (from a small grid) and CoPe's
α and τ (decode-only, cheap) by ROUGE-L of drafts against what the person really wrote."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from cope_local import methods
from cope_local.engine.engine import Engine, Plan
from cope_local.engine.loader import Loading
from cope_local.evaluation import rouge
from cope_local.tasks import Task

LR_GRID = (1e-5, 1e-4, 3e-4)
ALPHA_GRID = (0.1, 0.3, 0.5, 1.0)
TAU_GRID = (0.05, 0.1, 0.3)
VALIDATION_SHARE = 0.1
MIN_VALIDATION = 3
DECODE_ITEMS = 12  # validation items the α/τ grid decodes (each point drafts them all)


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


@dataclass
class Validator:
    """Drafts the validation items with llama.cpp, exactly as `cope draft` would, and scores them."""

    model_path: Path
    loading: Loading | None
    task: Task
    validation: list  # (inputs, output)
    history: list[str]  # the outputs trained on, newest first: they set the typical draft length

    def rouge_l(self, plan: Plan) -> float:
        """Mean ROUGE-L of the validation drafts under `plan`."""
        with Engine(self.model_path, loading=self.loading) as engine:
            return self._scores(engine, [plan], self.validation)[0]

    def _scores(self, engine: Engine, plans: list[Plan], items: list) -> list[float]:
        """Mean ROUGE-L of `items` drafted under each plan (one loaded model, prompts built once)."""
        params = methods.params(self.task.family, typical=methods.typical_length(engine, self.history))
        prompts = [methods.prompt_tokens(engine, self.task, inputs, params["max_tokens"], []) for inputs, _ in items]
        scores = []
        for plan in plans:
            total = 0.0
            for prompt, (_, output) in zip(prompts, items):
                tokens = [s.token for s in methods.steps(engine, prompt, plan, params)]
                total += rouge(methods.text_of(engine, tokens), output)[1]
            scores.append(total / max(len(items), 1))
        return scores

    def contrast(self, tam: Path | None, user: Path) -> dict:
        """α and τ for CoPe with the final adapter: the best point of the grid."""
        tam_set = ((tam, 1.0),) if tam else ()
        points = [(alpha, tau) for alpha in ALPHA_GRID for tau in TAU_GRID]
        plans = [Plan(user=(*tam_set, (user, 1.0)), base=tam_set, alpha=alpha, tau=tau) for alpha, tau in points]
        with Engine(self.model_path, loading=self.loading) as engine:
            scores = dict(zip(points, self._scores(engine, plans, self.validation[:DECODE_ITEMS])))
        defaults = methods.FAMILY_DEFAULTS[self.task.family]
        alpha, tau = best(scores, (defaults["alpha"], defaults["tau"]))
        return {"alpha": alpha, "tau": tau, "rougeL": {f"{a:g}/{t:g}": round(s, 4) for (a, t), s in scores.items()}}


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


def learning_rate(base, task: Task, rows: list, spec, hyper, workdir: Path, tam: Path | None, validator: Validator,
                  record: Record, report) -> float:
    """Train the user's SFT adapter at each grid learning rate, draft the validation items with
    it (OPPU, greedy), keep the best: its adapter becomes the run's SFT result (sft.gguf,
    sft-peft) for the stages after it. Finished grid points survive a kill (`record`)."""
    scores = dict(record["lr_rougeL"] or {})
    tam_set = ((tam, 1.0),) if tam else ()
    for lr in LR_GRID:
        if f"{lr:g}" in scores:
            continue
        folder = workdir / f"lr-{lr:g}"
        folder.mkdir(exist_ok=True)
        model = base.user_model(spec)
        base.train_sft(model, task, rows, folder, replace(hyper, lr=lr), report)
        base.model = model.unload()  # the next grid point starts from the same weights
        scores[f"{lr:g}"] = round(validator.rouge_l(Plan(user=(*tam_set, (folder / "sft.gguf", 1.0)))), 4)
        record["lr_rougeL"] = scores
    chosen = float(best({float(k): v for k, v in scores.items()}, hyper.lr))
    folder = workdir / f"lr-{chosen:g}"
    shutil.copytree(folder / "sft-peft", workdir / "sft-peft", dirs_exist_ok=True)
    shutil.copyfile(folder / "sft.gguf", workdir / "sft.gguf")
    return chosen
