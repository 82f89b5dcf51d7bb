"""GGUF files: headers, identity, LoRA adapters. Imports neither the store nor torch."""

from .files import fingerprint, read_gguf
from .header import GGUFFormatError, GGUFHeader, read_header

__all__ = ["GGUFFormatError", "GGUFHeader", "fingerprint", "read_gguf", "read_header"]
