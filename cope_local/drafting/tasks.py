"""The data-driven task registry (tasks.toml): fields, system prompt and prompt template per task."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import tomllib

from cope_local.errors import CopeError


@dataclass(frozen=True)
class Task:
    name: str
    family: str
    inputs: tuple[str, ...]
    output: str
    system: str
    template: str
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def fields(self) -> tuple[str, ...]:
        return (*self.inputs, self.output)

    def label(self, name: str) -> str:
        return self.labels.get(name, name)

    def prompt(self, inputs: dict[str, str]) -> str:
        """The user turn for `inputs`; every input field must be present."""
        missing = [name for name in self.inputs if not str(inputs.get(name, "")).strip()]
        if missing:
            raise CopeError(
                f"task '{self.name}' needs {', '.join(missing)}",
                hint=f"give every input field: {', '.join(self.inputs)}",
            )
        return self.template.format(**{name: str(inputs[name]).strip() for name in self.inputs})


@cache
def registry() -> dict[str, Task]:
    raw = tomllib.loads(resources.files("cope_local.drafting").joinpath("tasks.toml").read_text("utf-8"))
    tasks = {}
    for entry in raw["task"]:
        task = Task(
            name=entry["name"],
            family=entry["family"],
            inputs=tuple(entry["inputs"]),
            output=entry["output"],
            system=entry["system"],
            template=entry["template"],
            labels=dict(entry.get("labels", {})),
        )
        tasks[task.name] = task
    return tasks


def get_task(name: str) -> Task:
    try:
        return registry()[name]
    except KeyError:
        raise CopeError(
            f"unknown task '{name}'", hint=f"choose one of: {', '.join(registry())}"
        ) from None
