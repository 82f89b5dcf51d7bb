"""`cope train`: the nightly, incremental, resumable, atomic retrain of a person's adapters.

Per task whose history changed: a TAM if there is none, OPPU SFT, export, negatives, DPO,
export, a smoke check, then the new version is activated in one transaction. Work happens in a
folder named after the history it trains on, with stage outputs and checkpoints, so a killed
run resumes where it stopped; the previously active adapter stays in use until the switch.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cope_local.drafting.tasks import Task, get_task
from cope_local.engine.engine import Engine, Plan
from cope_local.engine.llama import Context
from cope_local.engine.sampling import score_continuations
from cope_local.errors import CopeError
from cope_local.home import Home
from cope_local.progress import Cancel, Cancelled, Progress, Report, ignore
from cope_local.store import adapter_registry, drafts
from cope_local.store.database import Store, utc_now
from cope_local.store.models import ModelInfo, loading, resolve
from cope_local.store.run_folder import RunFolder
from trainer import negatives, real_pairs, tuning
from trainer.data import collate, limit, one_line, response_logprobs
from trainer.real_pairs import REAL_PAIRS_SHARE
from trainer.stages import DPO_BETA, DPO_HYPER, SFT_HYPER, TAM_HYPER, USER_LORA, BaseTrainer, LoraSpec, with_overrides

MIN_ITEMS = 8
TAM_MAX_ITEMS = 2000  # other people's items per task for the TAM (CPU budget), newest first
TAM_VALIDATION_EVERY = 20  # every 20th corpus item (5 %) is held out to measure the TAM
CANCELLED = "training cancelled; finished stages are kept and the next run resumes them"
RETRY = "the previous adapter stays active; retrain from scratch: cope train --force"
PARITY_TOLERANCE = 0.25  # mean |Δ log-prob| per token, llama.cpp (quantized base) vs transformers


@dataclass
class Options:
    epochs: float | None = None
    lr: float | None = None
    rank: int | None = None
    dpo: bool = True
    force: bool = False
    tam_max_items: int = TAM_MAX_ITEMS
    max_items: int | None = None  # only the newest items of the user's history
    tune: bool = False  # pick the SFT lr and CoPe's α/τ on the user's held-out newest items (tuning.py)
    seed: int = 0  # adapters' initial weights, training order and negatives
    real_pairs_share: float = REAL_PAIRS_SHARE  # the person's own pairs' largest share of DPO's (real_pairs.py)


@dataclass
class Outcome:
    task: str
    status: str  # done, skipped, failed
    message: str
    version: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


def history_fingerprint(rows: list[tuple[dict, str]], model: ModelInfo, options: Options, pairs: list[dict] = ()) -> str:
    digest = hashlib.sha256(model.fingerprint.encode())
    numbers = [None if v is None else float(v) for v in (options.epochs, options.lr, options.rank)]
    digest.update(json.dumps([*numbers, options.dpo, *([True] if options.tune else []),
                              *([options.seed] if options.seed else [])]).encode())
    for row in sorted(json.dumps([inputs, output], sort_keys=True) for inputs, output in rows):
        digest.update(row.encode())
    for pair in real_pairs.fingerprint_part(pairs):
        digest.update(pair.encode())
    return digest.hexdigest()[:16]


class RunRow:
    """This retrain's training_runs row (store.py owns the table): stage and progress, written at
    most once a second and at every new stage."""

    def __init__(self, store: Store, profile_id: int, task: str, fingerprint: str):
        self.store, self._last, self._stage = store, 0.0, None
        self.id = store.start_training_run(profile_id, task, fingerprint)

    def progress(self, progress: Progress) -> None:
        if progress.stage != self._stage or time.monotonic() - self._last > 1.0:
            self._last, self._stage = time.monotonic(), progress.stage
            self.store.training_progress(self.id, progress.stage, progress.step / max(progress.total, 1))

    def finish(self, status: str, message: str, error: str | None = None) -> None:
        self.store.finish_training_run(self.id, status, message, error)


def loss_trend(losses: list[float]) -> dict:
    """Mean loss of the first and of the last tenth of the steps (one batch's loss is noisy)."""
    span = max(1, len(losses) // 10)
    return {"loss_first": sum(losses[:span]) / span, "loss_last": sum(losses[-span:]) / span}


def dequantized_cache(home: Home, model: ModelInfo) -> Path:
    """Where a small model's dequantized copies are kept between jobs (see BaseTrainer)."""
    return home.models / f"dequantized-{model.fingerprint[:16]}"


class Job:
    def __init__(self, store: Store, profile: str, model_name: str | None = None, options: Options | None = None,
                 report: Report = ignore, cancel: Cancel | None = None):
        self.store, self.profile = store, profile
        self.profile_id = store.profile_id(profile)
        self.model = resolve(store, model_name)
        self.loading = loading(store, self.model)  # how llama.cpp loads it here (engine.loader)
        self.options = options or Options()
        # Cancel stops the job at its next report: finished stages stay, the next run resumes them.
        self.report = cancel.reporting(report, CANCELLED) if cancel else report

    def tasks(self) -> list[str]:
        return sorted(task for task, count in next(p for p in self.store.profiles() if p["name"] == self.profile)["tasks"].items())

    def run(self, tasks: list[str] | None = None) -> list[Outcome]:
        outcomes = []
        for name in tasks or self.tasks():
            outcome = self.train_task(get_task(name))
            self._log(outcome)
            outcomes.append(outcome)
        return outcomes

    def _log(self, outcome: Outcome) -> None:
        """Per-stage timings and losses, one JSON line per task and run, in logs/train.jsonl."""
        line = json.dumps({"at": utc_now(), "profile": self.profile, **outcome.__dict__}, default=str)
        with (self.store.home.logs / "train.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    # -- one task ----------------------------------------------------------------------------

    def history(self, task: Task) -> list[tuple[dict, str]]:
        rows = [(w.inputs, w.output) for w in self.store.writings(profile=self.profile, task=task.name)]
        return rows[: self.options.max_items] if self.options.max_items else rows

    def train_task(self, task: Task) -> Outcome:
        rows = self.history(task)
        if len(rows) < MIN_ITEMS:
            return Outcome(task.name, "skipped", f"only {len(rows)} items of '{task.name}' (need {MIN_ITEMS}); import more first")
        person_pairs = drafts.preference_pairs(self.store, self.profile_id, task.name) if self.options.dpo else []
        fingerprint = history_fingerprint(rows, self.model, self.options, person_pairs)
        active = adapter_registry.active(self.store, task.name, "user", self.profile_id)
        if active and active.metrics.get("history") == fingerprint and not self.options.force and not self._retune(active):
            return Outcome(task.name, "skipped", f"'{task.name}' unchanged since v{active.version}", active.version)
        path = self.store.home.adapters / str(self.profile_id) / task.name / f"run-{fingerprint}"
        if self.options.force and path.exists() and any(v.folder.path == path for v in
                                                       adapter_registry.versions(self.store, task.name, "user", self.profile_id)):
            path = path.with_name(f"{path.name}-{int(time.time())}")  # a fresh run; the registered one stays
        path.mkdir(parents=True, exist_ok=True)
        run_row = RunRow(self.store, self.profile_id, task.name, fingerprint)
        try:
            outcome = self._train(task, rows, person_pairs, RunFolder(path), fingerprint, run_row)
        except BaseException as exc:  # also KeyboardInterrupt: the row must not stay 'running'
            stopped = "cancelled" if isinstance(exc, Cancelled) else "failed"
            run_row.finish("failed", f"{stopped}; the previous adapter stays active", f"{type(exc).__name__}: {exc}")
            if isinstance(exc, (KeyboardInterrupt, SystemExit, Cancelled)):
                raise  # the whole job stops: no next task
            return Outcome(task.name, "failed", f"{type(exc).__name__}: {exc} — the previous adapter stays active")
        run_row.finish("done", outcome.message)
        return outcome

    def _retune(self, active) -> bool:
        """Tuned under an earlier rule: the same run folder resumes, and only α/τ are chosen again."""
        return self.options.tune and (active.metrics.get("tuning") or {}).get("rule") != tuning.RULE

    def _train(self, task: Task, rows, person_pairs: list[dict], folder: RunFolder, fingerprint: str,
               run_row: RunRow) -> Outcome:
        family = task.family
        timings, metrics = {}, {"items": len(rows), "history": fingerprint, "seed": self.options.seed, "resumed": []}

        def report(progress: Progress) -> None:
            self.report(progress)
            run_row.progress(progress)

        started = time.perf_counter()
        base = self._base_trainer()
        timings["load"] = time.perf_counter() - started

        tam_gguf = self._ensure_tam(base, task, report, timings, metrics)
        spec = LoraSpec(self.options.rank, self.options.rank, USER_LORA.targets) if self.options.rank else USER_LORA
        sft_hyper = with_overrides(SFT_HYPER[family], epochs=self.options.epochs, lr=self.options.lr, seed=self.options.seed)

        t = time.perf_counter()
        if self.options.tune:  # the newest items are held out: they choose, they never train
            rows, validation = tuning.split(rows)
            record = tuning.Record(folder.tuning)
            validator = tuning.Validator(self.model.path, self.loading, task, validation, [output for _, output in rows], report)
            if not folder.sft.exists():
                record["lr"] = tuning.learning_rate(base, task, rows, spec, sft_hyper, folder, tam_gguf, validator, record, report)
        finished = self.options.dpo and folder.final.exists()  # DPO done: resume from its weights
        model = base.user_model(spec, resume_from=(folder.peft if finished else folder.sft_peft) / "user")
        if folder.sft.exists():
            metrics["resumed"].append("sft")
        else:
            result = base.train_sft(model, task, rows, folder, sft_hyper, report)
            metrics["sft"] = {**loss_trend(result.losses), "steps": result.steps,
                              "tokens_per_s": round(result.tokens_per_second, 1)}
        timings["sft"] = time.perf_counter() - t

        if self.options.dpo:
            t = time.perf_counter()
            if folder.negatives.exists():
                metrics["resumed"].append("negatives")
            remembered = negatives.remembered_file(folder.path.parent, self.model.path, tam_gguf, limit(task),
                                                     one_line(task))
            pairs, stats = base.mine_negatives(model, task, rows, tam_gguf, folder, seed=self.options.seed, report=report,
                                               remembered=remembered)
            timings["negatives"] = time.perf_counter() - t
            metrics["negatives"] = {"pairs": len(pairs), "mean_reward": sum(p["reward"] for p in pairs) / max(len(pairs), 1),
                                    **stats}
            own = real_pairs.chosen_for_training(person_pairs, len(pairs), self.options.real_pairs_share,
                                                 [inputs for inputs, _ in validation] if self.options.tune else [])
            if person_pairs:
                metrics["real_pairs"] = {"used": len(own), "available": len(person_pairs),
                                         "share_cap": self.options.real_pairs_share}
            pairs = pairs + [{key: p[key] for key in ("inputs", "chosen", "rejected")} for p in own]
            t = time.perf_counter()
            if folder.final.exists():
                metrics["resumed"].append("dpo")
            else:
                result = base.train_dpo(model, task, pairs, folder, with_overrides(DPO_HYPER[family], seed=self.options.seed),
                                        DPO_BETA[family], report)
                metrics["dpo"] = {**loss_trend(result.losses), "steps": result.steps}
            timings["dpo"] = time.perf_counter() - t
        elif not folder.final.exists():
            shutil.copyfile(folder.sft, folder.final)

        if self.options.tune:
            t = time.perf_counter()
            if (record["contrast"] or {}).get("rule") != tuning.RULE:
                record["contrast"] = validator.contrast(tam_gguf, folder.final)
            metrics["tuning"] = {"lr": record["lr"], "lr_rougeL": record["lr_rougeL"], "validation_items": len(validation),
                                 **record["contrast"]}
            timings["tuning"] = time.perf_counter() - t
        t = time.perf_counter()
        metrics["smoke"] = self._smoke_check(base, model, task, rows[0], tam_gguf, folder.final)
        timings["smoke"] = time.perf_counter() - t
        metrics["timings"] = {k: round(v, 1) for k, v in timings.items()}
        version = adapter_registry.register(
            self.store, task=task.name, kind="user", profile_id=self.profile_id, gguf_path=folder.final,
            peft_path=(folder.peft if self.options.dpo else folder.sft_peft) / "user",
            base_fingerprint=self.model.fingerprint, metrics=metrics, activate=True,
        )
        return Outcome(task.name, "done", f"'{task.name}' v{version.version} active ({len(rows)} items)", version.version, timings, metrics)

    def _base_trainer(self) -> BaseTrainer:
        return BaseTrainer(self.model.path, hf_dir=self.model.hf_dir, cache=dequantized_cache(self.store.home, self.model),
                           loading=self.loading, seed=self.options.seed)

    def train_tam(self, task: Task) -> Path | None:
        """Only the task adapter, if there is none yet (an eval run shares it among its users)."""
        return self._ensure_tam(self._base_trainer(), task, self.report, {}, {})

    def _ensure_tam(self, base: BaseTrainer, task: Task, report: Report, timings, metrics) -> Path | None:
        t = time.perf_counter()
        current = adapter_registry.active(self.store, task.name, "tam", None)
        if current and current.base_fingerprint == self.model.fingerprint and current.peft_path and current.peft_path.exists():
            base.merge_tam(current.peft_path)
            metrics["tam"] = {"version": current.version}
            return current.gguf_path
        rows = self.store.corpus(task.name, self.profile_id, self.options.tam_max_items)
        if len(rows) < MIN_ITEMS:
            metrics["tam"] = None  # π_base is the plain base model
            return None
        identity = history_fingerprint(rows, self.model, Options(seed=self.options.seed))
        folder = RunFolder(self.store.home.adapters / "tam" / task.name / f"run-{identity}")
        folder.path.mkdir(parents=True, exist_ok=True)
        held_out = rows[::TAM_VALIDATION_EVERY] if len(rows) >= 4 * TAM_VALIDATION_EVERY else []
        training = [row for i, row in enumerate(rows) if not held_out or i % TAM_VALIDATION_EVERY]
        result = base.train_tam(task, training, folder, with_overrides(TAM_HYPER, seed=self.options.seed), report=report,
                                validation=held_out)
        tam = adapter_registry.register(
            self.store, task=task.name, kind="tam", profile_id=None, gguf_path=folder.final,
            peft_path=folder.peft / "tam", base_fingerprint=self.model.fingerprint,
            metrics={"items": len(training), **loss_trend(result.losses), "validation": result.validation,
                     "seed": self.options.seed}, activate=True,
        )
        timings["tam"] = time.perf_counter() - t
        metrics["tam"] = {"version": tam.version}
        return tam.gguf_path

    def _smoke_check(self, base: BaseTrainer, model, task: Task, row, tam_gguf: Path | None, adapter: Path) -> dict:
        """The new adapter loads in llama.cpp, drafts something, and agrees with transformers."""
        inputs, output = row
        example = base.encoder.example(task, inputs, output)
        with torch.no_grad():
            tensors = collate([example], base.pad_id, base.device.torch)
            torch_logp = float(response_logprobs(model, tensors)[0])
        with Engine(self.model.path, loading=self.loading) as engine:  # closing it closes ctx too
            user_set = ((tam_gguf, 1.0),) if tam_gguf else ()
            user_set = (*user_set, (adapter, 1.0))
            draft = [s.token for s in engine.generate(example.prompt_ids, Plan(user=user_set), 24)]
            ctx = Context(engine.model, [(engine.adapter(p), s) for p, s in user_set])
            [[llama_logp]] = score_continuations(ctx, [example.prompt_ids], [[example.response_ids]])
        gap = abs(torch_logp - llama_logp) / len(example.response_ids)
        if not draft:
            raise CopeError("the new adapter drafts nothing; it was not activated", hint=RETRY)
        if gap > PARITY_TOLERANCE:
            raise CopeError(f"the exported adapter disagrees with training (mean |Δ log-prob| {gap:.3f}); it was not activated",
                            hint=RETRY)
        return {"draft_tokens": len(draft), "parity_gap": round(gap, 4)}
