"""GGUF files: headers, identity, LoRA adapters. Imports neither the store nor torch."""

from cope_local.gguf.files import fingerprint, read_gguf
from cope_local.gguf.header import GGUFFormatError, GGUFHeader, read_header

__all__ = ["GGUFFormatError", "GGUFHeader", "fingerprint", "read_gguf", "read_header"]
