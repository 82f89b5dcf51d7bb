"""What every command shares: the store, JSON output, the --json option, FIELD=VALUE parsing."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cope_local.drafting.tasks import get_task
from cope_local.errors import CopeError
from cope_local.home import ensure_home
from cope_local.progress import Progress
from cope_local.store.database import Store

if TYPE_CHECKING:
    from cope_local.store.models import ModelInfo

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def open_store() -> Store:
    return Store.open(ensure_home())


def model_info(name: str | None) -> ModelInfo | None:
    """A model from `cope models` (None: none was named)."""
    if not name:
        return None
    from cope_local.store.models import resolve

    with open_store() as store:
        return resolve(store, name)


def model_file(name: str | None) -> Path | None:
    """The file of a model from `cope models` (None: the embedded one)."""
    info = model_info(name)
    return info.path if info else None


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


def short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class StageProgress:
    """A rich progress bar per stage of a long job in a terminal; elsewhere (a log file, a
    systemd journal: rich draws nothing until the end there) one timestamped line per stage,
    per finished stage and at most one a minute in between, so an hours-long eval shows where it is."""

    LINE_EVERY_S = 60.0

    def __init__(self, enabled: bool = True):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bars

        self._bars = Bars(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), transient=False)
        self.enabled, self.live = enabled, enabled and self._bars.console.is_terminal
        self._tasks: dict[str, int] = {}
        self._said: dict[str, tuple[int, float]] = {}  # stage -> (step, monotonic time) of its last line

    def __enter__(self) -> StageProgress:
        if self.live:
            self._bars.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.live:
            self._bars.stop()

    def update(self, progress: Progress) -> None:
        if not self.enabled:
            return
        loss = "" if progress.loss is None else f"loss {progress.loss:.3f}"
        if not self.live:
            self._line(progress, loss)
            return
        if progress.stage not in self._tasks:
            self._tasks[progress.stage] = self._bars.add_task(progress.stage, total=progress.total, loss=loss)
        self._bars.update(self._tasks[progress.stage], completed=progress.step, total=progress.total, loss=loss)

    def _line(self, progress: Progress, loss: str) -> None:
        now = time.monotonic()
        step, said_at = self._said.get(progress.stage, (None, 0.0))
        finished = progress.step >= progress.total and step != progress.step
        if step is None or finished or now - said_at >= self.LINE_EVERY_S:
            self._said[progress.stage] = (progress.step, now)
            stamp = datetime.now().strftime("%H:%M:%S")
            click.echo(f"{stamp} {progress.stage} {progress.step}/{progress.total} {loss}".rstrip(), err=True)
