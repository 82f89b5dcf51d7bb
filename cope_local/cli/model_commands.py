"""`cope models …`: the embedded default, added GGUFs, and how llama.cpp loads them here."""

from __future__ import annotations

from pathlib import Path

import click

from cope_local.cli.common import emit_json, json_option, open_store
from cope_local.engine.loader import MODES
from cope_local.store import models
from cope_local.store.packaged_models import PACKAGED, assemble


@click.group("models", invoke_without_command=True)
@json_option
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
    available = [{"name": p.name, "package": p.distribution, "installed": p.installed, "terms": p.terms}
                 for p in PACKAGED.values() if p.name not in {m.name for m in found}]
    if as_json:
        emit_json(rows + [{**row, "available": True} for row in available])
        return
    for row in rows:
        mark = "*" if row["default"] else " "
        size = row["size_bytes"] / 1e6
        click.echo(f"{mark} {row['name']:<24} {row['architecture']:<10} {size:8.1f} MB  {row['path']}")
    for row in available:
        how = f"cope models add {row['name']}" if row["installed"] else PACKAGED[row["name"]].install_hint
        click.echo(f"  {row['name']:<24} available: {how} ({row['terms']})")
    with open_store() as store:
        click.echo(buffers_text(models.buffers_report(store)))


def buffers_text(report: dict) -> str:
    return (f"llama.cpp buffers for {report['model']}: {report['mode']} (setting: {report['requested']}; {report['reason']})\n"
            f"CPU features llama.cpp sees: {' '.join(report['cpu_features']) or 'none reported'}")


@models_command.command("buffers")
@click.argument("mode", required=False, type=click.Choice(MODES))
@json_option
def models_buffers(mode, as_json) -> None:
    """Show or set how llama.cpp loads models: auto (probe once, default), plain, or extra."""
    with open_store() as store:
        if mode:
            models.set_buffers(store, mode)
        report = models.buffers_report(store)
    if as_json:
        emit_json(report)
    else:
        click.echo(buffers_text(report))


@models_command.command("add")
@click.argument("path", type=click.Path(path_type=Path), metavar="PATH|NAME")
@click.option("--name", help="Name to refer to it by (default: the file name).")
@click.option("--hf-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The local Hugging Face folder the GGUF came from; training loads it directly.")
@click.option("--default", "make_default", is_flag=True, help="Use it from now on.")
def models_add(path, name, hf_dir, make_default) -> None:
    """Validate a local GGUF (format and architecture) and register it; or NAME, a model that
    came as a package (see `cope models`), assembled into the data folder first."""
    with open_store() as store:
        packaged = PACKAGED.get(str(path)) if not path.exists() else None
        if packaged:
            path, name = assemble(packaged, store.home.models), name or packaged.name
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


COMMANDS = [models_command]
