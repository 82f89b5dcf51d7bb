"""Training (torch, transformers, PEFT, TRL): TAM, OPPU SFT, negatives, DPO, GGUF export."""
