"""`cope import`, `history`, `profiles`, `draft`, `accept`, `reject`: a person's writing in, drafts out."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cope_local import importers
from cope_local.cli.common import emit_json, json_option, open_store, parse_fields, parse_mapping, short
from cope_local.drafting.methods import DRAFT_METHODS
from cope_local.drafting.tasks import registry
from cope_local.jobs.draft import prepare_for, save
from cope_local.store import drafts


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--profile", "-p", help="Whose writing this is (for LaMP data: a prefix for one profile per user).")
@click.option("--task", "-t", type=click.Choice(sorted(registry())), help="What kind of writing it is.")
@click.option("--format", "fmt", type=click.Choice(importers.FORMATS), help="Detected from the file when omitted.")
@click.option("--map", "mapping", multiple=True, metavar="FIELD=COLUMN", help="CSV/JSONL: read a task field from another column.")
@click.option("--corpus", is_flag=True, help="Other people's writing: a task corpus that trains the task adapter (TAM).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def import_command(paths, profile, task, fmt, mapping, corpus, as_json) -> None:
    """Import past writing: a folder of .txt/.md, CSV, JSONL, LaMP/LongLaMP JSON, mbox, Reddit posts.csv.

    Exit code 0: all rows imported; 1: some rows rejected (listed as FILE:LINE: reason);
    2: a file could not be read. Nothing is stored if the import is interrupted.
    """
    with open_store() as store:
        report = importers.run_import(store, paths, profile, task, fmt, parse_mapping(mapping),
                                      kind="corpus" if corpus else "person")
    if as_json:
        emit_json(report.as_json())
    else:
        for problem in [*report.unreadable, *report.rejected]:
            click.echo(str(problem) if problem.line else f"{problem.path}: {problem.reason}", err=True)
        click.echo(f"imported {report.imported}, already there {report.duplicates}, rejected {len(report.rejected)}")
        if report.unreadable:
            click.echo("some files could not be read: fix them (see above) and import again", err=True)
    sys.exit(report.exit_code)


@click.command()
@click.option("--profile", "-p")
@click.option("--task", "-t", type=click.Choice(sorted(registry())))
@click.option("--search", "-s", help="Full-text search (all words must match).")
@click.option("--limit", "-n", type=int, default=50, show_default=True)
@json_option
def history(profile, task, search, limit, as_json) -> None:
    """Browse and search imported writing."""
    with open_store() as store:
        items = store.writings(profile=profile, task=task, search=search, limit=limit)
    if as_json:
        emit_json([item.as_dict() for item in items])
        return
    if not items:
        click.echo("nothing found" if search else "no writing yet — start with: cope import PATH --profile NAME --task TASK")
    for item in items:
        date = (item.written_at or item.created_at)[:10]
        inputs = " | ".join(item.inputs.values())
        click.echo(f"#{item.id} {item.profile} [{item.task}] {date}  {short(inputs)} → {short(item.output)}")


@click.command()
@json_option
def profiles(as_json) -> None:
    """List the people (and eval users) whose writing is stored."""
    with open_store() as store:
        found = store.profiles()
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("no profiles yet — import some writing: cope import PATH --profile NAME --task TASK")
    for entry in found:
        tasks = ", ".join(f"{task} {count}" for task, count in entry["tasks"].items()) or "no writing"
        click.echo(f"{entry['name']} ({entry['kind']}): {tasks}")


@click.command()
@click.argument("fields", nargs=-1)
@click.option("--task", "-t", required=True, type=click.Choice(sorted(registry())))
@click.option("--profile", "-p", required=True)
@click.option("--method", "-m", type=click.Choice(DRAFT_METHODS), default="cope", show_default=True,
              help="cope: your adapter contrasted against the task adapter; oppu_dpo / oppu: your adapter after / before DPO, greedy.")
@click.option("--alpha", type=float, help="Contrast strength (default per task family: .3 short, .1 long).")
@click.option("--tau", type=float, help="Plausibility threshold on π_user (default .1).")
@click.option("--penalty", type=float, help="Repetition penalty (CoPe default: 1.0 short, 7.0 long).")
@click.option("--max-tokens", type=int)
@click.option("--temperature", type=float, help="0 = greedy (default).")
@click.option("--top-p", type=float)
@click.option("--seed", type=int)
@click.option("--model", "model_name", help="A model from `cope models` (default: the configured one).")
@click.option("--json", "as_json", is_flag=True, help="Print text, tokens (with why each was chosen), params, tok/s.")
def draft(fields, task, profile, method, alpha, tau, penalty, max_tokens, temperature, top_p, seed, model_name, as_json) -> None:
    """Draft text in PROFILE's voice. FIELDS: the task's inputs as FIELD=VALUE (or plain text for one-input tasks)."""
    with open_store() as store:
        prepared = prepare_for(
            store, profile, task, parse_fields(task, fields), method, model_name,
            alpha=alpha, tau=tau, penalty=penalty, max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed,
        )
        for note in prepared.notes:
            click.echo(f"note: {note}", err=True)
        for step in prepared.stream():
            if not as_json:
                click.echo(step.text, nl=False)
        draft_id = save(store, profile, prepared)
    if as_json:
        emit_json({"id": draft_id, **prepared.as_json()})
    else:
        click.echo()
        click.echo(f"[draft #{draft_id}: {prepared.method}, {len(prepared.steps)} tokens, {prepared.tok_s:.1f} tok/s; "
                   f"keep it: cope accept {draft_id} (--text 'your edit'); not like you: cope reject {draft_id}]", err=True)


@click.command()
@click.argument("draft_id", type=int)
@click.option("--text", help="Your edited version (default: the draft as generated).")
def accept(draft_id, text) -> None:
    """Keep a draft as your writing: it becomes history for the next retrain."""
    with open_store() as store:
        writing_id = drafts.accept(store, draft_id, text)
    click.echo(f"saved as writing #{writing_id}")


@click.command()
@click.argument("draft_id", type=int)
def reject(draft_id) -> None:
    """Mark a draft as not like you: with the text you keep for the same inputs, the next retrain
    learns from the pair (what you kept over what was proposed)."""
    with open_store() as store:
        drafts.reject(store, draft_id)
    click.echo(f"draft #{draft_id} rejected; draft again and accept (or edit) the one you keep")


COMMANDS = [import_command, history, profiles, draft, accept, reject]
