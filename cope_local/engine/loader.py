"""How llama.cpp loads a model on this machine: with its extra buffer types, or plain.

llama.cpp repacks weights into CPU-specific "extra" buffers (AMX, REPACK). On AMX Xeons the
AMX matmul segfaults on the first decode (upstream llama.cpp #20824), which kills the whole
process. Every model load in cope goes through `decide` (the mode) and `Loading.params`:

- `plain` turns the extra buffer types off; `extra` keeps llama.cpp's default;
- `auto` (the default) uses `plain` at once on a CPU with a known-bad feature (AMX), otherwise
  loads the model in a child process and decodes a few tokens (`probe`); a child killed by a
  signal, or logits that are NaN/inf, mean `plain`. The verdict is remembered per model
  fingerprint, llama.cpp version and CPU flags, so the probe runs once per machine and model.

The choice comes from COPE_LLAMA_BUFFERS, else the caller's setting, else `auto`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cope_local.errors import CopeError

MODES = ("auto", "plain", "extra")
ENV = "COPE_LLAMA_BUFFERS"
# CPU features whose llama.cpp extra buffers are known to crash: no probe, straight to plain.
KNOWN_BAD = {"amx": "llama.cpp's AMX matmul crashes on this CPU (llama.cpp issue #20824)"}
PROBE_TIMEOUT = 120.0


class Memory(Protocol):
    """Where verdicts are kept between processes (the store's settings table)."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...


@dataclass(frozen=True)
class Loading:
    """How one model file is loaded: `mode` is what llama.cpp is told (plain or extra)."""

    mode: str
    requested: str
    reason: str

    def params(self):
        import llama_cpp.llama_cpp as C

        params = C.llama_model_default_params()
        params.use_extra_bufts = self.mode == "extra"
        return params

    def as_dict(self) -> dict:
        return {"mode": self.mode, "requested": self.requested, "reason": self.reason}


def requested_mode(setting: str | None = None) -> str:
    """COPE_LLAMA_BUFFERS, else the stored setting, else auto."""
    value = (os.environ.get(ENV) or setting or "auto").strip().lower()
    if value not in MODES:
        source = ENV if os.environ.get(ENV) else "the llama_buffers setting"
        raise CopeError(f"{source} is '{value}', not one of {', '.join(MODES)}", hint=f"set {ENV}=auto (or plain)")
    return value


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as the kernel reports them (empty where /proc/cpuinfo is absent)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def llama_features() -> dict[str, str]:
    """What llama.cpp's CPU backend reports (e.g. {'AVX2': '1', 'AMX_INT8': '1', 'REPACK': '1'})."""
    from cope_local.engine.backend import ensure_backend  # loads llama.cpp: only when asked

    C = ensure_backend()
    found = {}
    for part in C.llama_print_system_info().decode("utf-8", errors="replace").split("|"):
        name, sep, value = part.rpartition("=")
        if sep:
            found[name.split(":")[-1].strip()] = value.strip()
    return found


def cpu_features() -> list[str]:
    """The CPU features llama.cpp's backend uses here (those it reports as 1)."""
    return sorted(name for name, value in llama_features().items() if value == "1" and name.isupper())


def known_bad(flags: frozenset[str], features: dict[str, str] | None = None) -> str | None:
    """Why the extra buffers must not be used here, if a known-bad feature is present."""
    names = {f.lower() for f in flags} | {k.lower() for k, v in (features or {}).items() if v not in ("0", "")}
    for feature, why in KNOWN_BAD.items():
        if any(name.startswith(feature) for name in names):
            return why
    return None


def machine_key(model_fingerprint: str, flags: frozenset[str]) -> str:
    import llama_cpp

    digest = hashlib.sha256(json.dumps([model_fingerprint, llama_cpp.__version__, platform.machine(), sorted(flags)]).encode())
    return "llama_buffers." + digest.hexdigest()[:16]


def probe(model_path: Path, timeout: float = PROBE_TIMEOUT, command: list[str] | None = None) -> str | None:
    """Load `model_path` with the extra buffers in a child process and decode a few tokens.
    None if that worked; otherwise why not (the child's death is never the caller's)."""
    command = command or [sys.executable, "-m", "cope_local.engine.probe", str(model_path)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"the probe did not finish in {timeout:.0f} s"
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        return f"the probe process died by {name}"
    if done.returncode != 0:
        last = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
        return f"the probe failed (exit {done.returncode}: {last[0]})"
    return None


_decided: dict[str, Loading] = {}  # verdicts already reached in this process


def decide(model_path: Path, model_fingerprint: str, requested: str = "auto", memory: Memory | None = None,
           flags: frozenset[str] | None = None, features: dict[str, str] | None = None,
           run_probe: Callable[[Path], str | None] = probe) -> Loading:
    """The way to load `model_path` here; see the module doc."""
    if requested == "plain":
        return Loading("plain", requested, "asked for plain buffers")
    if requested == "extra":
        return Loading("extra", requested, "asked for llama.cpp's extra buffers")
    flags = cpu_flags() if flags is None else flags
    bad = known_bad(flags, llama_features() if features is None else features)
    if bad:
        return Loading("plain", requested, bad)
    key = machine_key(model_fingerprint, flags)
    if key in _decided:
        return _decided[key]
    remembered = memory.get(key) if memory is not None else None
    if remembered:
        verdict = json.loads(remembered)
        loading = Loading(verdict["mode"], requested, verdict["reason"])
    else:
        failure = run_probe(Path(model_path))
        loading = (Loading("plain", requested, f"{failure}; extra buffers turned off") if failure
                   else Loading("extra", requested, "a probe decoded correctly with llama.cpp's extra buffers"))
        if memory is not None:
            memory.put(key, json.dumps({"mode": loading.mode, "reason": loading.reason}))
    _decided[key] = loading
    return loading
