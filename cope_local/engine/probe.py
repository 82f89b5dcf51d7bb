"""`python -m cope_local.engine.probe MODEL.gguf`: load with llama.cpp's extra buffers, decode a
few tokens, exit 0 if every logit is finite (3 if not). Run by loader.probe in a child process,
so that a backend that crashes takes only this process down."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from cope_local.engine.llama import Context, Model
from cope_local.engine.loader import Loading

NOT_FINITE = 3


def main(path: str) -> int:
    model = Model(Path(path), Loading("extra", "extra", "probe"))
    ctx = Context(model, n_ctx=64)
    try:
        tokens = model.tokenize("Hello, how are you today?")[:6] or [model.bos]
        ctx.decode(tokens if len(tokens) > 1 else tokens * 2)
        for _ in range(3):  # one-token decodes take llama.cpp's other (n=1) path
            logits = ctx.logits()
            if not np.isfinite(logits).all():
                return NOT_FINITE
            ctx.decode([int(np.argmax(logits))])
        return 0 if np.isfinite(ctx.logits()).all() else NOT_FINITE
    finally:
        ctx.close()
        model.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
