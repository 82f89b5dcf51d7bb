"""One test user of an eval run, start to finish: their adapters trained (or found from an earlier
start), then each wanted method's answer to each of their questions, drafted as `cope draft`
drafts (drafting.draft.prepare) and scored. The runner calls it on this machine; the Ray fan-out
calls it on a worker."""

from __future__ import annotations

import random
from collections.abc import Iterator

from cope_local.drafting.draft import prepare, text_of
from cope_local.drafting.methods import METHODS, Adapters
from cope_local.drafting.prompts import render_chat
from cope_local.drafting.tasks import Task
from cope_local.engine.engine import Engine, Plan
from cope_local.errors import CopeError
from cope_local.eval.data import Question
from cope_local.eval.metrics import rouge
from cope_local.eval.protocol import Settings, history_and_cases
from cope_local.jobs.draft import person_adapters
from cope_local.progress import Report, ignore
from cope_local.store import adapter_registry
from cope_local.store.database import Store
from cope_local.store.models import resolve
from trainer.eval import edits
from trainer.pipeline import Job, Options


def options(settings: Settings) -> Options:
    """How an eval run trains: the run's settings as a training job's options."""
    return Options(epochs=settings.epochs, lr=settings.lr, rank=settings.rank, tam_max_items=settings.tam_items,
                   tune=settings.tune, seed=settings.seed)


def import_users(store: Store, task: Task, test: list[Question], others: list[Question], settings: Settings) -> None:
    """Test users' histories as their profiles; everyone else's as the TAM corpus (idempotent)."""
    with store.transaction():
        corpus = store.ensure_profile("corpus", "corpus")
        for question in others:
            for inputs, output, date in question.profile:
                store.add_writing(corpus, task.name, inputs, output, written_at=date)
        for question in test:
            person = store.ensure_profile(f"user:{question.user}", "person")
            history, _ = history_and_cases(question, settings)
            for inputs, output, date in (edits.plan(history, settings)[0] if settings.edits else history):
                store.add_writing(person, task.name, inputs, output, written_at=date)


def evaluate_user(store: Store, engine: Engine, task: Task, question: Question, settings: Settings, done: dict,
                  report: Report = ignore) -> Iterator[dict]:
    """The answers of one test user that `done` lacks, training the user's adapters first if needed."""
    history, cases = history_and_cases(question, settings)
    wanted = [m for m in settings.methods if any((c.id, m) not in done for c in cases)]
    if not wanted:
        return
    if any(METHODS[m].user for m in wanted):
        if settings.edits:
            edits.first_night(store, engine, f"user:{question.user}", task, history, settings, options(settings), report)
        adapters, tuned = user_adapters(store, f"user:{question.user}", task, settings, report)
    else:  # the run's TAM at most: nothing of this user's to train
        tam = adapter_registry.active(store, task.name, "tam", None)
        adapters, tuned = Adapters(tam.gguf_path if tam else None), None
    chosen = {"tuned": {k: tuned[k] for k in ("lr", "alpha", "tau")}} if tuned else {}
    for method in wanted:
        for case in cases:
            if (case.id, method) not in done:
                prediction = answer(engine, task, method, case, history, adapters, tuned)
                r1, rl = rouge(prediction, case.gold)
                yield {"key": case.id, "user": question.user, "method": method, "prediction": prediction,
                       "gold": case.gold, "rouge1": r1, "rougeL": rl, **(chosen if METHODS[method].user else {})}


def user_adapters(store: Store, profile: str, task: Task, settings: Settings, report: Report) -> tuple[Adapters, dict | None]:
    """The user's adapters (trained here, or found from an earlier start) and what tuning chose."""
    outcome = Job(store, profile, options=options(settings), report=report).train_task(task)
    if outcome.status == "failed" or adapter_registry.active(store, task.name, "user", store.profile_id(profile)) is None:
        raise CopeError(f"training {profile} failed: {outcome.message}",
                        hint="see logs/train.jsonl in the run's store; a rerun resumes the finished stages")
    adapters, user = person_adapters(store, task.name, store.profile_id(profile), resolve(store), [])
    return adapters, user.metrics.get("tuning") if user else None


def answer(engine: Engine, task: Task, name: str, case: Question, history, adapters: Adapters,
           tuned: dict | None = None) -> str:
    """One answer, drafted as `cope draft` drafts."""
    context = METHODS[name].context
    preamble = {"rag": lambda: retrieved(task, case, history),
                "pag": lambda: f"The user's writing style: {style_profile(engine, history)}\n\n"}
    newest_first = [output for _, output, _ in reversed(history)]
    return prepare(engine, task, case.inputs, name, adapters, tuned, newest_first,
                   preamble[context]() if context else "").complete()


def retrieved(task: Task, case: Question, history) -> str:
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


def style_profile(engine: Engine, history) -> str:
    """PAG: the local model summarises the style of 10 random history items."""
    key = tuple(output for _, output, _ in history)
    if key not in _STYLE_CACHE:
        sample = random.Random(0).sample(list(key), min(10, len(key)))
        listing = "\n".join(f"- {text[:300]}" for text in sample)
        messages = [{"role": "system", "content": "You describe writing styles."},
                    {"role": "user", "content": f"Texts by one author:\n{listing}\n\nDescribe this author's writing style in two sentences."}]
        prompt = engine.tokenize_prompt(render_chat(engine.model.chat_template(), messages))
        _STYLE_CACHE[key] = text_of(engine, [s.token for s in engine.generate(prompt, Plan(user=()), 80)])
    return _STYLE_CACHE[key]
