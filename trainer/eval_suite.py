"""`cope eval`: the paper's experiments on this machine — every method on LaMP / LongLaMP test
users, ROUGE with paired-bootstrap CIs, a table and a chart. Resumable: adapters live in the
run's own store, predictions in predictions.jsonl; a rerun continues where it stopped."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cope_local import adapter_registry, eval_results, methods
from cope_local.engine.engine import Engine, Plan
from cope_local.errors import CopeError
from cope_local.evaluation import Question, data_fingerprint, load, rouge, split
from cope_local.home import ensure_home
from cope_local.methods import METHODS, Adapters
from cope_local.models import ModelInfo, adopt, loading, resolve
from cope_local.progress import Progress, Report, ignore
from cope_local.prompts import render_chat
from cope_local.store import Store
from cope_local.tasks import Task, get_task

from . import eval_tam
from .pipeline import Job, Options


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


def test_cases(question: Question, settings: Settings) -> tuple[list[tuple[dict, str, str | None]], list[Question]]:
    """(training history, questions): the official question, plus the newest items of the
    history as extra questions when asked (each answered from older history only)."""
    history = question.profile[-settings.max_profile:] if settings.max_profile else list(question.profile)
    extra = max(0, settings.questions_per_user - 1)
    held, history = (history[len(history) - extra:], history[:len(history) - extra]) if extra else ([], history)
    cases = [question] + [Question(f"{question.id}/h{i}", question.user, inputs, output, [])
                          for i, (inputs, output, _) in enumerate(held)]
    return history, cases


def run(data: Path, out: Path, task_name: str | None, settings: Settings, report: Report = ignore,
        tam: Path | None = None, ray: str | None = None, model: ModelInfo | None = None) -> dict:
    """Evaluate this shard's test users (each on this machine, or one Ray task each with `ray`:
    an address, or "local") and write the results. The TAM is trained once, or taken from `tam`.
    `model`: the base model (default: the one this `out` was run with, at first the embedded one)."""
    task, questions = load(data, get_task(task_name) if task_name else None)
    test, others = split(questions, settings.users)
    index, count = settings.shard
    test = test[index::count]
    out.mkdir(parents=True, exist_ok=True)
    answers = Answers(out / "predictions.jsonl")
    with Store.open(ensure_home(out / "store")) as store:
        import_users(store, task, test, others, settings)
        model = _base_model(store, model, answers, out)
        shared = None
        if any(METHODS[m].tam or METHODS[m].user for m in settings.methods) and test:
            wanted = eval_tam.identity(store, task, model, settings.tam_items)
            job = Job(store, f"user:{test[0].user}", options=_options(settings), report=report)
            shared = eval_tam.ensure(store, task, wanted, tam, out / "tam", lambda: job.train_tam(task))
        if ray is not None:
            from .eval_ray import fan_out

            fan_out(ray, task, test, settings, shared, out, answers, report)
        else:
            with Engine(model.path, loading=loading(store, model)) as engine:
                for number, question in enumerate(test, 1):
                    report(Progress("users", number - 1, len(test)))
                    for row in evaluate_user(store, engine, task, question, settings, answers.done, report):
                        answers.add(row)
        report(Progress("users", len(test), len(test)))
    header = {"data": str(data), "data_fingerprint": data_fingerprint(data), "task": task.name, "model": model.fingerprint,
              "users": len(test), "test_questions": [q.id for q in test], "settings": settings.__dict__}
    return eval_results.write(out, header, answers.in_order(test, settings))


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
            cases = test_cases(question, settings)[1]
            ordered += [self.done[(case.id, method)] for method in settings.methods for case in cases
                        if (case.id, method) in self.done]
        return ordered


def evaluate_user(store: Store, engine: Engine, task: Task, question: Question, settings: Settings, done: dict,
                  report: Report = ignore) -> Iterator[dict]:
    """The answers of one test user that `done` lacks, training the user's adapters first if needed."""
    history, cases = test_cases(question, settings)
    wanted = [m for m in settings.methods if any((c.id, m) not in done for c in cases)]
    if not wanted:
        return
    if any(METHODS[m].user for m in wanted):
        adapters, tuned = _adapters(store, f"user:{question.user}", task, settings, report)
    else:  # the run's TAM at most: nothing of this user's to train
        tam = adapter_registry.active(store, task.name, "tam", None)
        adapters, tuned = Adapters(tam.gguf_path if tam else None), None
    chosen = {"tuned": {k: tuned[k] for k in ("lr", "alpha", "tau")}} if tuned else {}
    for method in wanted:
        for case in cases:
            if (case.id, method) not in done:
                prediction = _predict(engine, task, method, case, history, adapters, tuned)
                r1, rl = rouge(prediction, case.gold)
                yield {"key": case.id, "user": question.user, "method": method, "prediction": prediction,
                       "gold": case.gold, "rouge1": r1, "rougeL": rl, **(chosen if METHODS[method].user else {})}


def _options(settings: Settings) -> Options:
    return Options(epochs=settings.epochs, lr=settings.lr, rank=settings.rank, tam_max_items=settings.tam_items,
                   tune=settings.tune)


def import_users(store: Store, task: Task, test: list[Question], others: list[Question], settings: Settings) -> None:
    """Test users' histories as their profiles; everyone else's as the TAM corpus (idempotent)."""
    with store.transaction():
        corpus = store.ensure_profile("corpus", "corpus")
        for question in others:
            for inputs, output, date in question.profile:
                store.add_writing(corpus, task.name, inputs, output, written_at=date)
        for question in test:
            person = store.ensure_profile(f"user:{question.user}", "person")
            history, _ = test_cases(question, settings)
            for inputs, output, date in history:
                store.add_writing(person, task.name, inputs, output, written_at=date)


def _adapters(store: Store, profile: str, task: Task, settings: Settings, report: Report) -> tuple[Adapters, dict | None]:
    """The user's adapters (trained here, or found from an earlier run) and what tuning chose."""
    job = Job(store, profile, options=_options(settings), report=report)
    outcome = job.train_task(task)
    tam = adapter_registry.active(store, task.name, "tam", None)
    user = adapter_registry.active(store, task.name, "user", store.profile_id(profile))
    if outcome.status == "failed" or user is None:
        raise RuntimeError(f"training {profile} failed: {outcome.message}")
    return Adapters(tam.gguf_path if tam else None, user.gguf_path.parent / "sft.gguf", user.gguf_path), user.metrics.get("tuning")


def _predict(engine: Engine, task: Task, name: str, case: Question, history, adapters: Adapters,
             tuned: dict | None = None) -> str:
    """One answer, by the drafting policy `cope draft` uses (cope_local.methods)."""
    chosen, notes = METHODS[name], []
    newest_first = [output for _, output, _ in reversed(history)]
    params = methods.params(task.family, tuned, methods.typical_length(engine, newest_first))
    used, plan = methods.plan(chosen, adapters, params["alpha"], params["tau"], notes)
    preamble = {"rag": lambda: _retrieved(task, case, history),
                "pag": lambda: f"The user's writing style: {_style_profile(engine, task, history)}\n\n"}
    prompt = methods.prompt_tokens(engine, task, case.inputs, params["max_tokens"], notes,
                                   preamble[used.context]() if used.context else "")
    return methods.drafted(engine, prompt, plan, params)


def _retrieved(task: Task, case: Question, history) -> str:
    """BM25 (rank_bm25 Okapi) top-3 of the user's history for the question, as the paper's RAG."""
    from rank_bm25 import BM25Okapi

    if not history:
        return ""
    documents = [" ".join(inputs.values()) + " " + output for inputs, output, _ in history]
    bm25 = BM25Okapi([d.lower().split() for d in documents])
    top = bm25.get_top_n(" ".join(case.inputs.values()).lower().split(), list(range(len(history))), n=3)
    examples = "\n".join(f"{task.label(task.output)}: {history[i][1]}" for i in top)
    return f"Examples of this user's past writing:\n{examples}\n\n"


_STYLE_CACHE: dict[tuple, str] = {}


def _style_profile(engine: Engine, task: Task, history) -> str:
    """PAG: the local model summarises the style of 10 random history items."""
    key = tuple(output for _, output, _ in history)
    if key not in _STYLE_CACHE:
        sample = random.Random(0).sample(list(key), min(10, len(key)))
        listing = "\n".join(f"- {text[:300]}" for text in sample)
        messages = [{"role": "system", "content": "You describe writing styles."},
                    {"role": "user", "content": f"Texts by one author:\n{listing}\n\nDescribe this author's writing style in two sentences."}]
        prompt = engine.tokenize_prompt(render_chat(engine.model.chat_template(), messages))
        _STYLE_CACHE[key] = methods.text_of(engine, [s.token for s in engine.generate(prompt, Plan(user=()), 80)])
    return _STYLE_CACHE[key]
