"""What differs between model architectures, kept in one place: which ones cope trains and drafts
with, the chat template used when a GGUF carries none, and which ones llama.cpp's converter
stores with permuted q/k rows (the LoRA exporter must match)."""

from __future__ import annotations

# Read by both llama.cpp and transformers' GGUF loader (which the trainer uses).
SUPPORTED = {"llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "stablelm", "starcoder2", "falcon"}
PERMUTED_QK = {"llama"}  # only llama's converter reorders q/k rows

# Gemma's turn format (its instruction-tuned models' template; pretrained Gemma GGUFs carry none):
# no system turn, so the system text opens the first user turn.
GEMMA_TURNS = (
    "{{ bos_token }}{% set system = messages[0]['content'] + '\\n\\n' if messages[0]['role'] == 'system' else '' %}"
    "{% for message in messages if message['role'] != 'system' %}"
    "{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\\n' }}"
    "{{ (system if loop.first else '') + message['content'] | trim }}{{ '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
FALLBACK_TEMPLATES = {"gemma2": GEMMA_TURNS, "gemma3": GEMMA_TURNS}


def chat_template(architecture: str, own: str | None) -> str | None:
    """The GGUF's own template, else the architecture's known one (None: prompts.CHATML)."""
    return own or FALLBACK_TEMPLATES.get(architecture)
