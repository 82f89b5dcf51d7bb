"""The plain reference CoPe: both contexts evaluated at every step, full-vocabulary numpy math,
exactly as the paper writes it (Eq. 1-3). The engine must match it token for token."""

import numpy as np

from cope_local.engine.llama import Context


def log_softmax(logits):
    logits = logits.astype(np.float64)
    shifted = logits - logits.max()
    return shifted - np.log(np.exp(shifted).sum())


def reference_generate(engine, prompt, user_set, base_set, alpha, tau, penalty, max_tokens):
    model = engine.model
    user_ctx = Context(model, [(engine.adapter(p), s) for p, s in user_set])
    base_ctx = Context(model, [(engine.adapter(p), s) for p, s in base_set]) if base_set is not None else None
    try:
        user_ctx.decode(list(prompt))
        if base_ctx:
            base_ctx.decode(list(prompt))
        out = []
        for _ in range(max_tokens):
            log_user = log_softmax(user_ctx.logits())
            scores = log_user.copy()
            if base_ctx is None:
                allowed = np.ones_like(scores, dtype=bool)
            else:
                log_base = log_softmax(base_ctx.logits())
                allowed = np.exp(log_user) >= tau * np.exp(log_user).max()  # Eq. 1, in probabilities
                scores = log_user - alpha * log_base  # Eq. 2
            for token in set(out):  # HF-style penalty on generated tokens, after the contrast
                if penalty != 1.0:
                    scores[token] = scores[token] / penalty if scores[token] > 0 else scores[token] * penalty
            scores[~allowed] = -np.inf
            token = int(np.argmax(scores))  # Eq. 3
            if model.is_end(token):
                break
            out.append(token)
            user_ctx.decode([token])
            if base_ctx:
                base_ctx.decode([token])
        return out
    finally:
        user_ctx.close()
        if base_ctx:
            base_ctx.close()
