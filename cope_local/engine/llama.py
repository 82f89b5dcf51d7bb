"""Thin owning wrappers over llama-cpp-python's low-level C API (pinned 0.3.36).

One `Model` is loaded once; each `Context` on it holds its own KV cache and its own LoRA set,
so π_base (base + TAM) and π_user (base + TAM + user) share the weights.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence
from pathlib import Path

import llama_cpp.llama_cpp as C
import numpy as np

from cope_local.engine.backend import ensure_backend, note_activity
from cope_local.engine.loader import Loading, decide, requested_mode
from cope_local.errors import CopeError
from cope_local.gguf import architectures, fingerprint


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count


class Model:
    """A GGUF base model loaded (mmap) once; tokenizer and chat template come with it.
    It owns the adapters and contexts made on it: closing it closes them first."""

    def __init__(self, path: Path, loading: Loading | None = None):
        ensure_backend()
        self.path = Path(path)
        # How llama.cpp loads it on this CPU (loader.py); without a store, verdicts live per process.
        self.loading = loading = loading or decide(self.path, fingerprint(self.path), requested_mode())
        self._owned: list = []  # adapters and contexts on this model, closed before it
        note_activity(f"loading the model {self.path} ({loading.mode} buffers)")
        self._model = C.llama_model_load_from_file(str(self.path).encode(), loading.params())
        if not self._model:
            raise CopeError(f"llama.cpp could not load the model {self.path}", hint="is it a complete, supported GGUF? see `cope models`")
        self.vocab = C.llama_model_get_vocab(self._model)
        self.n_vocab = C.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_train = C.llama_model_n_ctx_train(self._model)
        self.eos = C.llama_vocab_eos(self.vocab)

    @property
    def handle(self):
        if not self._model:
            raise CopeError("the model was closed", hint="this is a bug in cope: please report it with the command you ran")
        return self._model

    def chat_template(self) -> str | None:
        raw = C.llama_model_chat_template(self.handle, None)
        return architectures.chat_template(self.architecture, raw.decode("utf-8") if raw else None)

    @property
    def architecture(self) -> str:
        buffer = ctypes.create_string_buffer(64)
        size = C.llama_model_meta_val_str(self.handle, b"general.architecture", buffer, len(buffer))
        return buffer.value.decode() if size > 0 else ""

    def special_text(self, token: int) -> str:
        """How a special token (BOS, EOS) is spelled, for chat templates that write it out."""
        return self.piece(token, special=True).decode("utf-8", errors="replace") if token >= 0 else ""

    @property
    def bos(self) -> int:
        return C.llama_vocab_bos(self.vocab)

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        """Tokens of `text` exactly as written: no BOS added (the chat template supplies it)."""
        data = text.encode("utf-8")
        capacity = len(data) + 16
        buffer = (C.llama_token * capacity)()
        count = C.llama_tokenize(self.vocab, data, len(data), buffer, capacity, False, special)
        if count < 0:
            raise CopeError("the text could not be tokenized", hint="check the text for unusual characters and try again")
        return list(buffer[:count])

    def piece(self, token: int, special: bool = False) -> bytes:
        buffer = ctypes.create_string_buffer(64)
        size = C.llama_token_to_piece(self.vocab, token, buffer, 64, 0, special)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = C.llama_token_to_piece(self.vocab, token, buffer, -size, 0, special)
        return buffer.raw[:size]

    @functools.cached_property
    def chunk_invariant(self) -> bool:
        """Whether a prompt decoded in two chunks gives the very logits of one batch. Measured
        once: llama.cpp's kernels differ by batch size for some weight types, buffer layouts and
        CPUs (Gemma 3 Q4_K_M: chunks under 8 tokens, or almost any split with repacked weights;
        SmolLM2 Q4_1 on an AMX Xeon, plain buffers: any batch of 64 tokens or more). So the probe
        is as long as real prompts and splits them as drafting does (short and long prefixes)."""
        text = " ".join(["the quick brown fox jumps over a lazy dog"] * 20)
        tokens = self.tokenize(text)[:PROBE_TOKENS]
        whole = Context(self, [], n_ctx=2 * PROBE_TOKENS)
        try:
            whole.decode(tokens)
            expected = whole.logits().copy()
            # repacked weights go in blocks of 4 and 8 rows; larger batches may take other kernels
            for cut in (MIN_CHUNK + 1, MIN_CHUNK + 5, 40, PROBE_TOKENS // 2, PROBE_TOKENS - MIN_CHUNK - 1):
                whole.clear()
                whole.decode(tokens[:cut])
                whole.decode(tokens[cut:])
                if not np.array_equal(whole.logits(), expected):
                    return False
            return True
        finally:
            whole.close()

    def is_end(self, token: int) -> bool:
        return bool(C.llama_vocab_is_eog(self.vocab, token))

    @property
    def closed(self) -> bool:
        return not self._model

    def own(self, resource) -> None:
        self._owned = [r for r in self._owned if not r.closed] + [resource]

    def close(self) -> None:
        for resource in reversed(self._owned):
            resource.close()
        self._owned.clear()
        if self._model:
            C.llama_model_free(self._model)
            self._model = None


class LoraAdapter:
    """A LoRA GGUF loaded against a model; validate the file first (adapters.validate)."""

    def __init__(self, model: Model, path: Path):
        self.path = Path(path)
        note_activity(f"loading the adapter {self.path} onto the model {model.path} ({model.loading.mode} buffers)")
        self._adapter = C.llama_adapter_lora_init(model.handle, str(self.path).encode())
        if not self._adapter:
            raise CopeError(
                f"llama.cpp refused the adapter {self.path} (wrong shapes or architecture for this model)",
                hint="retrain it for this base model: cope train",
            )
        model.own(self)

    @property
    def handle(self):
        return self._adapter

    @property
    def closed(self) -> bool:
        return not self._adapter

    def close(self) -> None:
        # llama.cpp frees adapters with their model; an explicit free is also allowed while it lives.
        if self._adapter:
            C.llama_adapter_lora_free(self._adapter)
            self._adapter = None


# The context every draft runs in; training fits its prompts to the same budget.
CONTEXT_TOKENS = 2048
MIN_CHUNK = 8  # the fewest prompt tokens llama.cpp is given in one batch (see Context.start)
PROBE_TOKENS = 160  # Model.chunk_invariant's prompt: past the batch sizes where kernels change


class Context:
    """One KV cache with its own adapter set; remembers which tokens it holds for prefix reuse."""

    def __init__(self, model: Model, adapters: Sequence[tuple[LoraAdapter, float]] = (),
                 n_ctx: int = CONTEXT_TOKENS, n_threads: int = 1, n_batch: int = 512, n_seq_max: int = 1, unified: bool = True):
        self.model = model
        params = C.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq_max
        # Unified: sequences copied from one prompt share its cells. Not: each sequence has n_ctx /
        # n_seq_max cells of its own and attends over those only (faster for long, separate samples).
        params.kv_unified = n_seq_max > 1 and unified
        # Sliding-window models (Gemma 3): keep every position in the window cache instead of
        # pruning those outside the window, so a saved prefix snapshot holds all later decoding
        # reads (a precaution: exactness on Gemma came from Model.chunk_invariant, measured).
        params.swa_full = True
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.no_perf = True
        self._ctx = C.llama_init_from_model(model.handle, params)
        if not self._ctx:
            raise CopeError(f"llama.cpp could not create a context of {n_ctx} tokens", hint="try a smaller context")
        self.n_ctx = C.llama_n_ctx(self._ctx)
        self.n_batch, self.n_seq_max = n_batch, n_seq_max
        self._batch = C.llama_batch_init(n_batch, 0, n_seq_max)
        self.tokens: list[int] = []  # what the KV cache holds, position by position
        self._previous: list[int] = []  # the last sequence started, to find the shared prefix
        self._snapshot: tuple[list[int], ctypes.Array] | None = None
        model.own(self)
        self.set_adapters(adapters)

    def set_adapters(self, adapters: Sequence[tuple[LoraAdapter, float]]) -> None:
        active = [(a, s) for a, s in adapters if s != 0.0]
        note_activity(f"decoding with the model {self.model.path} ({self.model.loading.mode} buffers)"
                      + "".join(f", adapter {a.path} at {s:g}" for a, s in active))
        if active:
            handles = (C.llama_adapter_lora_p_ctypes * len(active))(*[a.handle for a, _ in active])
            scales = (ctypes.c_float * len(active))(*[s for _, s in active])
            C.llama_set_adapters_lora(self._ctx, handles, len(active), scales)
        else:
            C.llama_set_adapters_lora(self._ctx, None, 0, None)
        self._snapshot = None  # cached keys/values were computed under the old adapters
        self._previous = []
        self.clear()

    def clear(self) -> None:
        C.llama_memory_clear(C.llama_get_memory(self._ctx), True)
        self.tokens = []

    def start(self, prompt: Sequence[int]) -> list[int]:
        """Reuse what the cache holds of `prompt`; return the prompt tokens still to decode
        (>= MIN_CHUNK).

        llama.cpp's logits depend on how tokens were batched: small batches take other kernels
        than large ones (SmolLM2 Q4_1: n=1, and on an AMX Xeon n >= 64; Gemma 3 Q4_K_M: n < 8), and a
        cache cut back with llama_memory_seq_rm changes later results too (all measured). So a
        prompt is always decoded in chunks of >= MIN_CHUNK tokens, into a cache that is fresh or
        restored from a snapshot of the prefix shared with the previous prompt (system prompt +
        instruction): the result is bit-identical to decoding the whole prompt in a fresh context.
        Where no chunking is exact (Model.chunk_invariant), the whole prompt is decoded afresh.
        """
        if not self.model.chunk_invariant:  # only one batch of the whole prompt is exact there
            self.clear()
            return list(prompt)
        limit = len(prompt) - MIN_CHUNK
        snapshot = self._snapshot
        if snapshot and len(snapshot[0]) <= limit and list(prompt[:len(snapshot[0])]) == snapshot[0]:
            self._restore()
        else:
            self.clear()
        kept = len(self.tokens)
        shared = min(common_prefix(self._previous, prompt), limit)
        if shared - kept >= MIN_CHUNK:
            self.decode(prompt[kept:shared])
            self._save()
            kept = shared
        self._previous = list(prompt)
        return list(prompt[kept:])

    def _save(self) -> None:
        size = C.llama_state_seq_get_size(self._ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        C.llama_state_seq_get_data(self._ctx, buffer, size, 0)
        self._snapshot = (list(self.tokens), buffer)

    def _restore(self) -> None:
        tokens, buffer = self._snapshot
        self.clear()
        if C.llama_state_seq_set_data(self._ctx, buffer, len(buffer), 0) != len(buffer):
            self.clear()
            self._snapshot = None
            return
        self.tokens = list(tokens)

    def decode(self, tokens: Sequence[int], all_logits: bool = False) -> None:
        """Append `tokens` to sequence 0 in one batch (chunks of n_batch, none under MIN_CHUNK).

        Logits are kept for the last token, or for every token of the last chunk with `all_logits`.
        """
        if len(self.tokens) + len(tokens) > self.n_ctx:
            raise CopeError(f"the text no longer fits the {self.n_ctx}-token context", hint="shorten the input")
        bounds = list(range(0, len(tokens), self.n_batch)) + [len(tokens)]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] < MIN_CHUNK:
            bounds[-2] -= MIN_CHUNK  # a short last chunk would take a small-batch kernel (see start)
        for start, end in zip(bounds, bounds[1:]):
            last = end == len(tokens)
            self.submit([(token, len(self.tokens) + i, 0, all_logits and last or i == end - start - 1)
                         for i, token in enumerate(tokens[start:end])])
            self.tokens.extend(tokens[start:end])

    def submit(self, entries: Sequence[tuple[int, int, int, bool]]) -> None:
        """One llama_decode of (token, position, sequence, want logits) entries."""
        batch = self._batch
        batch.n_tokens = len(entries)
        for i, (token, pos, seq, want) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = want
        status = C.llama_decode(self._ctx, batch)
        if status != 0:
            self.clear()
            raise CopeError(f"llama.cpp failed to evaluate the text (code {status})",
                           hint="try llama.cpp's plain buffers: COPE_LLAMA_BUFFERS=plain (or cope models buffers plain)")

    @property
    def closed(self) -> bool:
        return not self._ctx

    def copy_sequence(self, source: int, target: int) -> None:
        C.llama_memory_seq_cp(C.llama_get_memory(self._ctx), source, target, -1, -1)

    def clear_sequence(self, seq: int) -> None:
        """Free the cells of one sequence (of a multi-sequence context)."""
        self.trim_sequence(seq, 0)

    def trim_sequence(self, seq: int, keep: int) -> None:
        """Free the cells of one sequence from position `keep` on (sampling only: a cache cut back
        can give other logits later than a fresh one; see start)."""
        C.llama_memory_seq_rm(C.llama_get_memory(self._ctx), seq, keep, -1)

    def logits(self, index: int = -1) -> np.ndarray:
        """A VIEW of the logits of batch entry `index`, valid until the next decode on this context."""
        pointer = C.llama_get_logits_ith(self._ctx, index)
        return np.ctypeslib.as_array(pointer, shape=(self.model.n_vocab,))

    def close(self) -> None:
        if self._ctx:
            C.llama_batch_free(self._batch)
            C.llama_free(self._ctx)
            self._ctx = None
