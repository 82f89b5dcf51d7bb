"""cope-local: drafts text in your own voice, on your own machine (CoPe decoding on llama.cpp).

Nothing here imports torch: training lives in the separate `trainer` package.
"""

import os

# No hub, no telemetry: every model and adapter is a local file.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__version__ = "0.1.0"
