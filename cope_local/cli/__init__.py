"""The `cope` command line. Every command honours COPE_HOME; errors say what to run next.

One module per command family; each defines its commands, and this module puts them on the
`cope` group (the modules import only `common`, never this one)."""

from __future__ import annotations

import os
import sys

import click

from cope_local.cli import eval_commands, jobs, model_commands, privacy_commands, writing
from cope_local.errors import CopeError
from cope_local.jobs.guard import supervise


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


for module in (writing, model_commands, privacy_commands, jobs, eval_commands):
    for command in module.COMMANDS:
        cli.add_command(command)


def main() -> None:
    os.umask(0o077)  # everything cope writes is private to the user
    supervise(sys.argv[1:])  # long jobs: a watched child does the work (guard.py)
    cli()
