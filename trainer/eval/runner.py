"""`cope eval`: the paper's experiments on this machine — every method on LaMP / LongLaMP test
users, ROUGE with paired-bootstrap CIs, a table and a chart. Resumable: adapters live in the
run's own store, predictions in predictions.jsonl; a rerun continues where it stopped. One test
user's work is trainer.eval.user's; this module runs a shard of them (here, or on Ray)."""

from __future__ import annotations

import json
from pathlib import Path

from cope_local.drafting.methods import METHODS
from cope_local.drafting.tasks import get_task
from cope_local.engine.engine import Engine
from cope_local.errors import CopeError
from cope_local.eval import results
from cope_local.eval.data import Question, data_fingerprint, load
from cope_local.eval.protocol import Settings, history_and_cases, shard_of, split
from cope_local.gguf.files import fingerprint
from cope_local.home import ensure_home
from cope_local.progress import Cancel, Progress, Report, ignore
from cope_local.store import adapter_registry
from cope_local.store.database import Store
from cope_local.store.models import ModelInfo, adopt, loading, resolve
from trainer.eval import shared_tam
from trainer.eval.ray_fan_out import fan_out
from trainer.eval.user import evaluate_user, import_users, options
from trainer.pipeline import Job


def run(data: Path, out: Path, task_name: str | None, settings: Settings, report: Report = ignore,
        tam: Path | None = None, ray: str | None = None, model: ModelInfo | None = None, cancel: Cancel | None = None) -> dict:
    """Evaluate this shard's test users (each on this machine, or one Ray task each with `ray`:
    an address, or "local") and write the results. The TAM is trained once, or taken from `tam`.
    `model`: the base model (default: the one this `out` was run with, at first the embedded one).
    `cancel` stops the run at its next report; a rerun continues where it stopped."""
    report = cancel.reporting(report, "evaluation cancelled; a rerun continues where it stopped") if cancel else report
    task, questions = load(data, get_task(task_name) if task_name else None)
    test, others = split(questions, settings)
    test = shard_of(test, settings)
    out.mkdir(parents=True, exist_ok=True)
    answers = Answers(out / "predictions.jsonl")
    with Store.open(ensure_home(out / "store")) as store:
        import_users(store, task, test, others, settings)
        model = _base_model(store, model, answers, out)
        shared = None
        if any(METHODS[m].tam or METHODS[m].user for m in settings.methods) and test:
            wanted = shared_tam.identity(store, task, model, settings.tam_items, settings.seed)
            job = Job(store, f"user:{test[0].user}", options=options(settings), report=report)
            shared = shared_tam.ensure(store, task, wanted, tam, out / "tam", lambda: job.train_tam(task))
        if ray is not None:
            fan_out(ray, task, test, settings, shared, out, answers, report)
        else:
            with Engine(model.path, loading=loading(store, model)) as engine:
                for number, question in enumerate(test, 1):
                    report(Progress("users", number - 1, len(test)))
                    for row in evaluate_user(store, engine, task, question, settings, answers.done, report):
                        answers.add(row)
        report(Progress("users", len(test), len(test)))
        tam_used = adapter_registry.active(store, task.name, "tam", None)
    header = {"data": str(data), "data_fingerprint": data_fingerprint(data), "task": task.name, "model": model.fingerprint,
              "tams": [{"fold": list(settings.fold), "fingerprints": [fingerprint(tam_used.gguf_path) if tam_used else None]}],
              "users": len(test), "test_questions": [q.id for q in test], "settings": settings.__dict__}
    return results.write(out, header, answers.in_order(test, settings))


def _base_model(store: Store, wanted: ModelInfo | None, answers: Answers, out: Path) -> ModelInfo:
    """The run's base model, kept in its own store so that a rerun resumes on the same one."""
    current = resolve(store)
    if wanted is None or wanted.fingerprint == current.fingerprint:
        return current
    if answers.done:
        raise CopeError(f"{out} holds answers drafted with {current.name}, not {wanted.name}",
                        hint="give another --out for a run with another model")
    return adopt(store, wanted)


class Answers:
    """predictions.jsonl: every answer, appended as it is made, so that a rerun resumes."""

    def __init__(self, path: Path):
        self.path = path
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        self.done = {(r["key"], r["method"]): r for r in map(json.loads, lines)}

    def add(self, row: dict) -> None:
        with self.path.open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.done[(row["key"], row["method"])] = row

    def in_order(self, test: list[Question], settings: Settings) -> list[dict]:
        """The answers of these users and methods: by test user, then method, then question."""
        ordered = []
        for question in test:
            cases = history_and_cases(question, settings)[1]
            ordered += [self.done[(case.id, method)] for method in settings.methods for case in cases
                        if (case.id, method) in self.done]
        return ordered
