"""`cope eval`: the paper's experiments on LaMP / LongLaMP data, on this machine, in shards, or on
Ray; `cope eval merge` puts shards back together, `compare` sets two runs side by side, `summary`
reports some of a run's users."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cope_local.cli.common import StageProgress, model_info
from cope_local.drafting.methods import LABELS, METHODS
from cope_local.drafting.tasks import registry
from cope_local.errors import CopeError, needs_train_extra
from cope_local.eval.protocol import Settings, part


@click.group("eval", invoke_without_command=True)
@click.option("--data", type=click.Path(exists=True, path_type=Path), help="LaMP/LongLaMP folder or questions JSON.")
@click.option("--task", "-t", type=click.Choice(sorted(registry())), help="Detected from the data when omitted.")
@click.option("--users", type=int, default=100, show_default=True, help="Test users: those with the longest histories.")
@click.option("--skip", type=int, default=0, show_default=True,
              help="Leave out the N longest histories (e.g. an earlier run's users): test users are the next --users.")
@click.option("--fold", default="0/1", show_default=True,
              help="k/n: test every n-th of the test users from the k-th; the TAM learns from all the others.")
@click.option("--max-profile", type=int, help="Use only each test user's newest K history items.")
@click.option("--questions-per-user", type=int, default=1, show_default=True,
              help="Also test on each user's newest history items (each answered from older history only).")
@click.option("--methods", help="Comma-separated subset of: base,rag,pag,tam,oppu,oppu_dpo,oppu_cd,cope.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("eval-out"), show_default=True)
@click.option("--shard", default="0/1", show_default=True, help="i/n: this machine's share of the test users.")
@click.option("--tam", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The tam/ folder of another shard of this run: its task adapter is used instead of training one.")
@click.option("--ray", is_flag=False, flag_value="local", metavar="[ADDRESS]",
              help="One Ray task per test user, on the cluster at ADDRESS (alone: a local Ray instance).")
@click.option("--tam-items", type=int, default=2000, show_default=True)
@click.option("--epochs", type=float)
@click.option("--lr", type=float)
@click.option("--rank", type=int)
@click.option("--tune", is_flag=True, help="Per-user tuning (as cope train --tune) on each user's held-out newest items.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the TAM's and the users' adapters (initial weights, training order, negatives).")
@click.option("--edits", type=int, default=0, show_default=True,
              help="Simulate a person who rewrote N drafts: night 1's CoPe drafts N history items, their real "
                   "text is the edit, night 2 learns from those pairs (compare with a run without --edits).")
@click.option("--model", "model_name", help="A model from `cope models` [default: the embedded one; a rerun: the run's].")
@click.pass_context
def eval_command(ctx, data, task, users, skip, fold, max_profile, questions_per_user, methods, out, shard, tam, ray,
                 tam_items, epochs, lr, rank, tune, seed, edits, model_name) -> None:
    """Run the paper's methods on LaMP / LongLaMP test users; writes results.json, results.md, a chart
    and scores.json (the scores alone, without any text or name: safe to share)."""
    if ctx.invoked_subcommand is not None:
        return
    if data is None:
        raise click.UsageError("Missing option '--data' (a LaMP/LongLaMP folder), or a command such as 'merge'.")
    with needs_train_extra("evaluation"):
        from trainer.eval.runner import run

    chosen = tuple(m.strip() for m in methods.split(",")) if methods else tuple(METHODS)
    unknown = set(chosen) - set(METHODS)
    if unknown:
        raise CopeError(f"unknown methods: {', '.join(sorted(unknown))}", hint="choose from " + ",".join(METHODS))
    settings = Settings(users=users, max_profile=max_profile, questions_per_user=questions_per_user, methods=chosen,
                        shard=part(shard, "--shard"), tam_items=tam_items, epochs=epochs, lr=lr, rank=rank, tune=tune,
                        skip=skip, fold=part(fold, "--fold"), seed=seed, edits=edits)
    with StageProgress() as progress:
        run(data, out, task, settings, progress.update, tam=tam, ray=ray, model=model_info(model_name))
    _show(out)


@eval_command.command("merge")
@click.argument("shards", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Where the merged results go.")
@click.option("--partial", is_flag=True, help="Merge the shards that finished so far; the result says it is partial.")
def merge(shards, out, partial) -> None:
    """Merge the --out folders of every shard (of every fold) of one run (`cope eval --shard i/n
    --fold k/n`) into one result (a folder holding only a shard's scores.json will do: the merge
    then has no texts from it)."""
    from cope_local.eval.results import merge as merge_shards

    merge_shards(list(shards), out, partial=partial)
    _show(out)


@eval_command.command("compare")
@click.argument("a", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("b", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--method", default="cope", show_default=True, type=click.Choice(list(METHODS)))
@click.option("--reference", default="tam", show_default=True, type=click.Choice(list(METHODS)))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def compare(a, b, method, reference, as_json) -> None:
    """Two runs on the same users (folders with results.json or scores.json; a merged run will do):
    METHOD − REFERENCE per user in each, and how it moved from B to A, by user."""
    from cope_local.eval import compare as comparing
    from cope_local.eval.results import read

    found = comparing.compare(read(a), read(b), method, reference)
    click.echo(json.dumps(found, indent=1) if as_json else comparing.markdown(found, LABELS))


@eval_command.command("summary")
@click.argument("run_folder", metavar="RUN", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--ranks", "within", help="Only the users of these ranks (history length), e.g. 16-60.")
@click.option("--fold", help="Only the users fold k/n of `cope eval --fold` tests, e.g. 0/3.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def summary(run_folder, within, fold, as_json) -> None:
    """A finished run's statistics (by user first) over some of its users: a rank range, a fold."""
    from cope_local.eval import subset
    from cope_local.eval.reports import markdown_table
    from cope_local.eval.results import read

    result = read(run_folder)
    users = subset.users_of(result, subset.rank_range(within) if within else None, part(fold, "--fold") if fold else None)
    found = subset.summary_of(result, users)
    click.echo(json.dumps(found, indent=1) if as_json else f"{len(users)} user{'' if len(users) == 1 else 's'}\n\n" + markdown_table(found, LABELS))


def _show(out: Path) -> None:
    click.echo((out / "results.md").read_text())
    click.echo(f"results: {out / 'results.json'}, {out / 'results.md'}, {out / 'rougeL.png'}; "
               f"without texts or names: {out / 'scores.json'}")


COMMANDS = [eval_command]
