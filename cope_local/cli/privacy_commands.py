"""`cope privacy status`, `cope export`, `cope forget`, `cope backup`, `cope restore`: a person's
control over their own data."""

from __future__ import annotations

from pathlib import Path

import click

from cope_local.cli.common import emit_json, json_option, open_store
from cope_local.errors import CopeError
from cope_local.jobs import privacy
from cope_local.store import sqlcipher
from cope_local.store.database import utc_now


@click.group("privacy")
def privacy_command() -> None:
    """Where your data is and how it is protected."""


@privacy_command.command("status")
@json_option
def privacy_status(as_json) -> None:
    """What is encrypted, where the key lives, and anything others could read."""
    with open_store() as store:
        report = privacy.status(store)
    if as_json:
        emit_json(report)
        return
    click.echo(f"database:  {report['database']}")
    click.echo(f"encrypted: {'yes, ' + report['cipher'] if report['encrypted'] else 'NO'}")
    click.echo(f"key:       {report['key']}")
    loose = report["readable_by_others"]
    click.echo("files:     " + ("all private to you (folders 0700, files 0600)" if not loose
                               else "readable by others: " + ", ".join(loose) + "  (chmod go-rwx them)"))
    click.echo(f"network:   {report['network']}")


@click.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--profile", "-p", help="One person's data (default: every profile).")
def export_command(out, profile) -> None:
    """Write everything stored about PROFILE (writings, drafts, adapter versions) to one JSON file.
    The file is NOT encrypted: keep it somewhere safe."""
    if out.exists():
        raise CopeError(f"{out} already exists", hint="choose a new file name")
    with open_store() as store:
        report = privacy.export_json(store, out, profile)
    click.echo(f"exported {report['writings']} writings and {report['drafts']} drafts "
               f"of {report['profiles']} profile(s) to {out} (unencrypted)")


@click.command()
@click.option("--profile", "-p", required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def forget(profile, yes) -> None:
    """Delete PROFILE with all its writings, drafts and adapters, and wipe them from the database file."""
    with open_store() as store:
        store.profile_id(profile)  # a clear error before the question when it does not exist
        if not yes:
            click.confirm(f"Delete everything about '{profile}'? This cannot be undone", abort=True)
        report = privacy.forget(store, profile)
    click.echo(f"forgot '{profile}': {report['writings']} writings, {report['drafts']} drafts, "
               f"{report['adapters']} adapter versions")


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup(path) -> None:
    """A consistent copy of the database (safe while the app or a retrain runs), encrypted with the same key."""
    with open_store() as store:
        sqlcipher.backup(store.conn, path)
    click.echo(f"backed up to {path} (restore with: cope restore {path})")


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore(path) -> None:
    """Replace the database with a backup made by `cope backup` (the current one is kept beside it first)."""
    with open_store() as store:
        kept = store.home.root / f"before-restore-{utc_now().replace(':', '')}.db"
        sqlcipher.backup(store.conn, kept)
        sqlcipher.restore(path, store.key, store.conn)
    click.echo(f"restored {path}; the database as it was is in {kept}")


COMMANDS = [privacy_command, export_command, forget, backup, restore]
