"""llama.cpp's C API, initialised once per process (quietly), and the note that tells a watching
parent what native code is busy with. The loader and the owning wrappers both start here."""

from __future__ import annotations

import ctypes
import os
import threading

import llama_cpp.llama_cpp as C

_init_lock = threading.Lock()
_initialised = False


@C.llama_log_callback
def _silent_log(level, text, user_data):  # llama.cpp logs to stderr by default; keep the terminal clean
    return None


def ensure_backend():
    """llama.cpp, initialised once per process (quiet); returns the C API module."""
    global _initialised
    with _init_lock:
        if not _initialised:
            C.llama_log_set(_silent_log, ctypes.c_void_p(0))
            C.llama_backend_init()
            _initialised = True
    return C


def note_activity(text: str) -> None:
    """Tell a supervising parent (cope_local.jobs.guard) what llama.cpp is working on, so that if
    this process dies by a signal the parent can name the model and adapters."""
    path = os.environ.get("COPE_CRASH_NOTE")
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
