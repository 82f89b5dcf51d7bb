"""Task inputs -> the exact prompt string, rendered with the model's own chat template.

Training (transformers) and drafting (llama.cpp) both use `render_prompt`, so the adapters
see at draft time precisely the text they were trained on.
"""

from __future__ import annotations

from functools import lru_cache

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import CopeError
from .tasks import Task

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
        raise CopeError(f"the model's chat template failed: {exc}") from exc


def messages_for(task: Task, inputs: dict[str, str], preamble: str = "") -> list[dict]:
    return [{"role": "system", "content": task.system}, {"role": "user", "content": preamble + task.prompt(inputs)}]


def render_prompt(task: Task, inputs: dict[str, str], template: str | None, bos: str = "", eos: str = "",
                  preamble: str = "") -> str:
    return render_chat(template, messages_for(task, inputs, preamble), bos, eos)
