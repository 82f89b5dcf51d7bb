"""Task inputs -> the exact prompt, rendered with the model's own chat template and fitted to the
context. Training (transformers) and drafting (llama.cpp) both render and fit here, so the
adapters see at draft time precisely the text they were trained on, cut alike where too long.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from cope_local.drafting.tasks import Task
from cope_local.engine.engine import Engine
from cope_local.engine.llama import CONTEXT_TOKENS
from cope_local.errors import CopeError

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _raise(message: str):
    raise jinja2.TemplateError(message)


@lru_cache(maxsize=8)
def _compile(template: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, loader=jinja2.BaseLoader())
    env.globals["raise_exception"] = _raise
    return env.from_string(template)


def render_chat(template: str | None, messages: list[dict], bos: str = "", eos: str = "") -> str:
    try:
        return _compile(template or CHATML).render(
            messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos
        )
    except jinja2.TemplateError as exc:
        if template and "system" in str(exc).lower():
            # Some templates (older Gemma, Mistral) reject a system turn: fold it into the user turn.
            merged = [{"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
            return render_chat(template, merged, bos, eos)
        raise CopeError(f"the model's chat template failed: {exc}",
                        hint="use another model (cope models), or one whose GGUF carries a working chat template") from exc


def messages_for(task: Task, inputs: dict[str, str], preamble: str = "") -> list[dict]:
    return [{"role": "system", "content": task.system}, {"role": "user", "content": preamble + task.prompt(inputs)}]


def render_prompt(task: Task, inputs: dict[str, str], template: str | None, bos: str = "", eos: str = "",
                  preamble: str = "") -> str:
    return render_chat(template, messages_for(task, inputs, preamble), bos, eos)


def prompt_budget(max_tokens: int, n_ctx: int = CONTEXT_TOKENS) -> int:
    """Tokens a prompt may take: the context less the room kept for the draft."""
    return n_ctx - min(max_tokens, n_ctx // 2)


def fit_prompt(tokenize: Callable[[str], list[int]], render: Callable[[dict[str, str]], str], task: Task,
               inputs: dict[str, str], budget: int, notes: list[str]) -> list[int]:
    """The rendered prompt's tokens in at most `budget`; an input too long is cut (its longest
    field, proportionally, then again if needed), never the instruction. Drafting (llama.cpp's
    tokenizer) and training (the HF tokenizer) both come here, so they cut alike."""
    inputs = dict(inputs)
    for _ in range(8):
        tokens = tokenize(render(inputs))
        if len(tokens) <= budget:
            return tokens
        longest = max(task.inputs, key=lambda name: len(inputs[name]))
        keep = int(len(inputs[longest]) * budget / len(tokens) * 0.9)
        if keep < 1:
            break
        inputs[longest] = inputs[longest][:keep]
        if not any("shortened" in n for n in notes):
            notes.append(f"the {task.label(longest)} was too long for the model's context and was shortened")
    raise CopeError("the prompt does not fit the model's context", hint="shorten the input")


def prompt_tokens(engine: Engine, task: Task, inputs: dict[str, str], max_tokens: int, notes: list[str],
                  preamble: str = "") -> list[int]:
    """The prompt's tokens for drafting, rendered as training renders it (the model's chat
    template with its BOS and EOS), `preamble` (RAG/PAG) before the instruction."""
    model = engine.model
    template, bos, eos = model.chat_template(), model.special_text(model.bos), model.special_text(model.eos)
    return fit_prompt(engine.tokenize_prompt, lambda fitted: render_prompt(task, fitted, template, bos, eos, preamble),
                      task, inputs, prompt_budget(max_tokens, engine.n_ctx), notes)
