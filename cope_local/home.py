"""Where cope-local keeps a person's data: one private folder (COPE_HOME overrides it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


@dataclass(frozen=True)
class Home:
    root: Path

    @property
    def db_path(self) -> Path:
        return self.root / "cope.db"

    @property
    def adapters(self) -> Path:
        return self.root / "adapters"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def home_root() -> Path:
    """COPE_HOME, else the folder chosen in the app's settings, else the platform's data folder."""
    override = os.environ.get("COPE_HOME")
    if override:
        return Path(override).expanduser()
    chosen = _chosen_file()
    remembered = chosen.read_text(encoding="utf-8").strip() if chosen.exists() else ""
    if remembered:
        return Path(remembered)
    return Path(platformdirs.user_data_dir("cope-local", appauthor=False))


def remember_home_root(root: Path) -> None:
    """Make `root` the data folder of every later run (COPE_HOME still wins when set)."""
    chosen = _chosen_file()
    chosen.parent.mkdir(parents=True, exist_ok=True)
    partial = chosen.with_name(chosen.name + ".partial")
    partial.write_text(str(root.expanduser().resolve()) + "\n", encoding="utf-8")
    os.replace(partial, chosen)


def _chosen_file() -> Path:
    return Path(platformdirs.user_config_dir("cope-local", appauthor=False)) / "data-folder"


def ensure_home(root: Path | None = None) -> Home:
    """Create the data folders (0700) if needed and return where things live."""
    home = Home(root or home_root())
    for folder in (home.root, home.adapters, home.models, home.logs):
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, PRIVATE_DIR)
    return home


def create_private_file(path: Path) -> None:
    """Create `path` empty with 0600 before anything else opens it (SQLite's -wal/-shm inherit this)."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE)
    os.close(fd)
    os.chmod(path, PRIVATE_FILE)
