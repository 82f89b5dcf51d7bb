"""`cope train`, `cope adapters …`, `cope schedule …`, `cope bench …`: the long-running jobs (eval: eval_commands)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from cope_local.cli.common import StageProgress, emit_json, json_option, model_file, open_store
from cope_local.drafting.tasks import registry
from cope_local.errors import CopeError, needs_train_extra
from cope_local.progress import Progress
from cope_local.store import adapter_registry


@click.command()
@click.option("--profile", "-p", help="Whose adapters (see --all).")
@click.option("--all", "everyone", is_flag=True, help="Every person's profile (the nightly job).")
@click.option("--task", "-t", "tasks", multiple=True, type=click.Choice(sorted(registry())), help="Default: every task with history.")
@click.option("--epochs", type=float, help="Override the paper's epochs for the user adapter.")
@click.option("--lr", type=float, help="Override the paper's learning rate for the user adapter.")
@click.option("--rank", type=int, help="LoRA rank (and alpha) of the user adapter (default 8, as the paper's code).")
@click.option("--no-dpo", is_flag=True, help="Stop after OPPU SFT (no negatives, no DPO).")
@click.option("--max-items", type=int, help="Train on the newest N items only.")
@click.option("--force", is_flag=True, help="Retrain even if the history did not change.")
@click.option("--tune", is_flag=True, help="Choose the SFT learning rate and CoPe's alpha/tau on your newest ~10% of writing (held out).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the adapters (initial weights, training order, negatives).")
@click.option("--real-pairs-share", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="At most this share of DPO's pairs come from your edited and rejected drafts.")
@click.option("--progress-lines", is_flag=True, hidden=True, help="One 'PROGRESS {json}' line per update (for the app).")
@json_option
def train(profile, everyone, tasks, epochs, lr, rank, no_dpo, max_items, force, tune, seed, real_pairs_share, progress_lines,
          as_json) -> None:
    """Retrain PROFILE's adapters where their history changed (resumable; the old adapter stays until the new one is ready)."""
    with needs_train_extra("training"):
        from trainer.pipeline import Job, Options

    options = Options(epochs=epochs, lr=lr, rank=rank, dpo=not no_dpo, force=force, max_items=max_items, tune=tune, seed=seed,
                      real_pairs_share=real_pairs_share)
    if not profile and not everyone:
        raise CopeError("whose adapters? pass --profile NAME, or --all", hint="cope profiles lists them")
    with open_store() as store, StageProgress(enabled=not (as_json or progress_lines)) as bars:
        report = progress_line if progress_lines else bars.update
        names = [p["name"] for p in store.profiles() if p["kind"] == "person"] if everyone else [profile]
        outcomes = [o for name in names for o in Job(store, name, options=options, report=report).run(list(tasks) or None)]
    if as_json:
        emit_json([o.__dict__ for o in outcomes])
    else:
        for outcome in outcomes:
            click.echo(f"{outcome.status}: {outcome.message}")
    if any(o.status == "failed" for o in outcomes):
        sys.exit(1)


def progress_line(progress: Progress) -> None:
    click.echo("PROGRESS " + json.dumps(progress.__dict__))


@click.group()
def adapters() -> None:
    """Trained adapters: list, roll back, export a PEFT folder to GGUF."""


@adapters.command("list")
@click.option("--profile", "-p")
@json_option
def adapters_list(profile, as_json) -> None:
    with open_store() as store:
        rows = sorted(adapter_registry.listing(store, store.profile_id(profile) if profile else None),
                      key=lambda pair: (pair[0], pair[1].task, pair[1].kind, pair[1].version))
    found = [{"profile": owner, "task": v.task, "kind": v.kind, "version": v.version, "active": v.active,
              "created_at": v.created_at, "metrics": v.metrics, "path": str(v.gguf_path)} for owner, v in rows]
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("no adapters yet — train some: cope train --profile NAME")
    for a in found:
        mark = "*" if a["active"] else " "
        tuned = a["metrics"].get("tuning")
        chosen = f"  tuned: lr={tuned['lr']:g} alpha={tuned['alpha']:g} tau={tuned['tau']:g}" if tuned else ""
        real = a["metrics"].get("real_pairs")
        learned = f"  your edits: {real['used']} pairs" if real else ""
        click.echo(f"{mark} {a['profile']} [{a['task']}] {a['kind']} v{a['version']}  {a['created_at']}  "
                   f"items={a['metrics'].get('items', '?')}{chosen}{learned}")


@adapters.command("rollback")
@click.option("--profile", "-p", required=True)
@click.option("--task", "-t", required=True, type=click.Choice(sorted(registry())))
def adapters_rollback(profile, task) -> None:
    """Make the previous version of PROFILE's adapter for TASK active again."""
    with open_store() as store:
        chosen = adapter_registry.rollback(store, task, "user", store.profile_id(profile))
    click.echo(f"active: {profile} [{task}] v{chosen.version}")


@adapters.command("export")
@click.argument("peft_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--base", "base", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def adapters_export(peft_dir, base, out) -> None:
    """Convert a PEFT LoRA folder (trained on BASE) to a llama.cpp LoRA GGUF."""
    with needs_train_extra("exporting"):
        from trainer.to_gguf import peft_dir_to_gguf
    click.echo(f"wrote {peft_dir_to_gguf(peft_dir, base, out)}")


@click.command()
@click.argument("action", type=click.Choice(["install", "remove", "status"]), default="status")
@json_option
def schedule(action, as_json) -> None:
    """The nightly retrain: a systemd user timer (Linux) or a launchd agent (macOS)."""
    from cope_local.jobs import schedule as scheduling

    scheduling.require_posix()
    result = {"install": scheduling.install, "remove": scheduling.remove, "status": scheduling.status}[action]()
    if as_json:
        emit_json(result.__dict__)
    else:
        click.echo(result.message)
        for path in result.files:
            click.echo(f"  {path}")


@click.group()
def bench() -> None:
    """Speed and memory benchmarks (JSON; see docs/benchmarks.md)."""


@bench.command("decode")
@click.option("--prompts", "n_prompts", type=int, default=8, show_default=True)
@click.option("--tokens", "max_tokens", type=int, default=64, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help="llama.cpp threads per context.")
@click.option("--rounds", type=int, default=3, show_default=True, help="Interleaved repetitions; the best is kept.")
@click.option("--hf-prompts", type=int, default=None, help="Prompts for the HF+PEFT loops [default: the same as --prompts].")
@click.option("--hf/--no-hf", default=True, show_default=True, help="Also time the paper's HF+PEFT loop.")
@click.option("--model", "model_name", help="A model from `cope models` [default: the embedded one].")
@click.option("--json", "as_json", is_flag=True, help="(always JSON; accepted for symmetry)")
def bench_decode(n_prompts, max_tokens, threads, rounds, hf_prompts, hf, model_name, as_json) -> None:
    """Plain greedy vs naive CoPe vs optimized CoPe vs an HF+PEFT CoPe loop, with llama.cpp's plain
    and extra buffers where both work, and on one core; memory of 1 vs 2 contexts."""
    from cope_local.jobs.bench_decode import run as run_bench

    emit_json(run_bench(n_prompts, max_tokens, threads, rounds, hf_prompts, model_path=model_file(model_name),
                        paper_loop=_paper_loop() if hf else None))


def _paper_loop():
    """The paper's HF+PEFT loop (the trainer's, with torch), or the missing package's name."""
    try:
        from trainer.bench_hf import paper_loop
    except ImportError as exc:
        return exc.name
    return paper_loop


@bench.command("train")
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="A LaMP-layout folder (questions.json), e.g. ../shared/data/huffpost-lamp4.")
@click.option("--items", type=int, default=300, show_default=True, help="History items of the benchmark user.")
@click.option("--tam-items", type=int, default=200, show_default=True, help="Other users' items for the TAM.")
@click.option("--trl-steps", type=int, default=10, show_default=True, help="Steps of the SFT speed comparison (0: none).")
@click.option("--task", "-t", type=click.Choice(sorted(registry())), help="Detected from the data when omitted.")
@click.option("--speed-only", is_flag=True, help="Only the SFT tokens/s comparison with TRL (no retrain).")
@click.option("--tam", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The tam/ folder of a `cope eval` run (same task and model) instead of training a TAM first.")
@click.option("--model", "model_name", help="A model from `cope models` [default: the embedded one].")
@click.option("--new-items", type=int, default=0, show_default=True,
              help="Then a second night with this many more items (the rest's samples remembered).")
@click.option("--json", "as_json", is_flag=True, help="(always JSON; accepted for symmetry)")
def bench_train(data, items, tam_items, trl_steps, task, speed_only, tam, model_name, new_items, as_json) -> None:
    """Stage wall times of a nightly retrain for one user, and SFT tokens/s vs TRL's SFTTrainer defaults."""
    with needs_train_extra("the training benchmark"):
        from trainer.bench_train import run as run_bench

    emit_json(run_bench(data, items, tam_items, trl_steps, speed_only, task, tam=tam, model_path=model_file(model_name),
                        new_items=new_items))


COMMANDS = [train, adapters, schedule, bench]
