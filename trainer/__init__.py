"""Training (torch, transformers, PEFT, TRL): TAM, OPPU SFT, negatives, DPO, GGUF export."""

import os

# Set before torch/transformers/tqdm are imported: no hub, no telemetry, no progress-bar noise.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF dequantisation bar
