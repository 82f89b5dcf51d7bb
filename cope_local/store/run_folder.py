"""The files of one adapter version's work folder, named in one place: what the training stages
write, what a killed run resumes from, and what drafting, eval and tuning read.

A person's version folder holds the adapter after SFT (`sft.gguf`, PEFT weights in `sft-peft/`),
the final one (`adapter.gguf`, `peft/`: after DPO, or the SFT adapter itself without DPO), DPO's
pairs (`negatives.json`), tuning's record (`tuning.json`), one sub-folder per learning rate tried
(`lr-<lr>/`, itself a run folder) and each stage's checkpoint. A TAM's folder holds the same
`adapter.gguf` and `peft/`, and `tam.json` when it is shared by an eval run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def final(self) -> Path:
        """The version's adapter: what `cope draft` uses."""
        return self.path / "adapter.gguf"

    @property
    def sft(self) -> Path:
        """The person's adapter after SFT, before DPO (OPPU)."""
        return self.path / "sft.gguf"

    @property
    def peft(self) -> Path:
        """The final adapter's PEFT weights (PEFT keeps an adapter named X in peft/X)."""
        return self.path / "peft"

    @property
    def sft_peft(self) -> Path:
        return self.path / "sft-peft"

    @property
    def negatives(self) -> Path:
        """DPO's (chosen, rejected) pairs with their reference log-probabilities."""
        return self.path / "negatives.json"

    @property
    def tuning(self) -> Path:
        return self.path / "tuning.json"

    @property
    def shared_tam_info(self) -> Path:
        """What a shared task adapter was trained on (eval runs)."""
        return self.path / "tam.json"

    def checkpoint(self, stage: str) -> Path:
        """The training loop's checkpoint of `stage` (tam, sft, dpo)."""
        return self.path / ("checkpoint.pt" if stage == "tam" else f"{stage}-checkpoint.pt")

    def learning_rate(self, lr: float) -> RunFolder:
        """Where tuning trains the SFT adapter at learning rate `lr`."""
        return RunFolder(self.path / f"lr-{lr:g}")
