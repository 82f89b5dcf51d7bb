"""What every importer yields: good records and rejected rows, each tied to a file and line."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Record:
    line: int
    inputs: dict[str, str]
    output: str
    written_at: str | None = None
    profile: str | None = None  # set by formats that hold several people (LaMP)
    task: str | None = None  # set by formats that know their task
    source: str | None = None  # the file within a folder import


@dataclass
class Rejection:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


class UnreadableFile(Exception):
    """The file as a whole cannot be read (missing, not text, not the format); nothing from it is imported."""


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    unreadable: list[Rejection] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.unreadable:
            return 2
        return 1 if self.rejected else 0

    def as_json(self) -> dict:
        return {
            "imported": self.imported,
            "duplicates": self.duplicates,
            "rejected": [r.__dict__ for r in [*self.unreadable, *self.rejected]],
        }


def line_of(text: str, offset: int) -> int:
    """1-based line number of a character offset."""
    return text.count("\n", 0, offset) + 1


def read_text(path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"cannot read the file: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not UTF-8 text (byte {exc.start}); save it as UTF-8 and import again") from exc
