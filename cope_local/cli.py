"""The `cope` command line. Every command honours COPE_HOME; errors say what to run next."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from . import draft as draft_module
from . import importers, models
from .errors import CopeError
from .home import ensure_home
from .store import Store
from .tasks import get_task, registry


def open_store() -> Store:
    return Store.open(ensure_home())


def emit_json(value) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def parse_mapping(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field or not column:
            raise click.BadParameter(f"'{pair}' is not FIELD=COLUMN", param_hint="--map")
        mapping[field.strip()] = column.strip()
    return mapping


class CopeGroup(click.Group):
    """Turns a CopeError anywhere below into its message and exit code, without a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CopeError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=CopeGroup, invoke_without_command=True)
@click.version_option(package_name="cope-local")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """cope-local: drafts text in your own voice, entirely on this machine. With no command: the app."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(tui)


@cli.command()
def tui() -> None:
    """Open the app (also: `cope` with no command)."""
    from tui.app import run

    run()


@cli.command("import")
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


@cli.command()
@click.option("--profile", "-p")
@click.option("--task", "-t", type=click.Choice(sorted(registry())))
@click.option("--search", "-s", help="Full-text search (all words must match).")
@click.option("--limit", "-n", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
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
        click.echo(f"#{item.id} {item.profile} [{item.task}] {date}  {_short(inputs)} → {_short(item.output)}")


def parse_fields(task_name: str, values: tuple[str, ...]) -> dict[str, str]:
    """FIELD=VALUE pairs; a task with one input also takes plain text ('-' reads stdin)."""
    task = get_task(task_name)
    fields, loose = {}, []
    for value in values:
        name, sep, rest = value.partition("=")
        if sep and name in task.inputs:
            fields[name] = rest
        else:
            loose.append(sys.stdin.read() if value == "-" else value)
    if loose:
        if len(task.inputs) != 1:
            raise CopeError(f"task '{task.name}' has several inputs", hint="give each as FIELD=VALUE: " + " ".join(f"{n}=..." for n in task.inputs))
        fields[task.inputs[0]] = " ".join(loose)
    return fields


@cli.command()
@click.argument("fields", nargs=-1)
@click.option("--task", "-t", required=True, type=click.Choice(sorted(registry())))
@click.option("--profile", "-p", required=True)
@click.option("--method", "-m", type=click.Choice(draft_module.METHODS), default="cope", show_default=True)
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
        prepared = draft_module.prepare(
            store, profile, task, parse_fields(task, fields), method, model_name,
            alpha=alpha, tau=tau, penalty=penalty, max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed,
        )
        for note in prepared.notes:
            click.echo(f"note: {note}", err=True)
        for step in prepared.stream():
            if not as_json:
                click.echo(step.text, nl=False)
        draft_id = draft_module.save(store, prepared)
    if as_json:
        emit_json({"id": draft_id, **prepared.as_json()})
    else:
        click.echo()
        click.echo(f"[draft #{draft_id}: {prepared.method}, {len(prepared.steps)} tokens, {prepared.tok_s:.1f} tok/s; keep it: cope accept {draft_id}]", err=True)


@cli.command()
@click.argument("draft_id", type=int)
@click.option("--text", help="Your edited version (default: the draft as generated).")
def accept(draft_id, text) -> None:
    """Keep a draft as your writing: it becomes history for the next retrain."""
    with open_store() as store:
        writing_id = draft_module.accept(store, draft_id, text)
    click.echo(f"saved as writing #{writing_id}")


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@cli.command()
@click.option("--json", "as_json", is_flag=True)
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


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models_command(ctx, as_json) -> None:
    """List base models: the embedded default and any GGUF you added."""
    if ctx.invoked_subcommand is not None:
        return
    with open_store() as store:
        default = models.default_name(store)
        found = [models.embedded(), *models.added(store)]
    rows = [
        {"name": m.name, "path": str(m.path), "architecture": m.architecture, "size_bytes": m.size_bytes,
         "embedded": m.embedded, "default": m.name == default}
        for m in found
    ]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        mark = "*" if row["default"] else " "
        size = row["size_bytes"] / 1e6
        click.echo(f"{mark} {row['name']:<24} {row['architecture']:<10} {size:8.1f} MB  {row['path']}")


@models_command.command("add")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", help="Name to refer to it by (default: the file name).")
@click.option("--hf-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The local Hugging Face folder the GGUF came from; training loads it directly.")
@click.option("--default", "make_default", is_flag=True, help="Use it from now on.")
def models_add(path, name, hf_dir, make_default) -> None:
    """Validate a local GGUF (format and architecture) and register it."""
    with open_store() as store:
        info = models.add(store, path, name, hf_dir)
        if make_default:
            models.set_default(store, info.name)
    click.echo(f"added {info.name} ({info.architecture}, {info.size_bytes / 1e6:.1f} MB)")


@models_command.command("default")
@click.argument("name")
def models_default(name) -> None:
    """Choose the model drafting and training use."""
    with open_store() as store:
        info = models.set_default(store, name)
    click.echo(f"default model: {info.name}")


cli.add_command(models_command, "models")


from . import cli_data, cli_jobs  # noqa: E402,F401  (register their commands on `cli`)


def main() -> None:
    os.umask(0o077)  # everything cope writes is private to the user
    cli()
