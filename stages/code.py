"""The code each training stage runs, in one table: dvc.yaml lists these paths as the stage's deps (a test
checks that they agree) and the stage fingerprints its checkpoints with them, so a code change that makes
DVC re-run a stage also stops it from resuming the old run's checkpoint."""

from __future__ import annotations

from pathlib import Path

SHARED = ("textdiff/config.py", "textdiff/data", "textdiff/nn", "textdiff/training")  # params schema, batches, backbone, loop

TRAINING_CODE = {
    "train": ("stages/train.py", *SHARED, "textdiff/processes", "textdiff/losses", "textdiff/spaces",
              "textdiff/families/contract.py", "textdiff/families/{family}.py",
              # the learning curve's held-out figure (stages/train.py learning_curve_probe)
              "textdiff/eval/learning_evidence.py", "textdiff/eval/context_blind.py", "textdiff/eval/context_probe.py",
              "textdiff/eval/elbo.py", "textdiff/eval/heldout_interval.py", "textdiff/eval/judge.py"),
    "judge": ("stages/judge.py", *SHARED, "textdiff/families/ar.py", "textdiff/families/contract.py",
              "textdiff/spaces/registry.py", "textdiff/eval/judge.py", "textdiff/losses/causal.py"),
    "autoencoder": ("stages/autoencoder.py", *SHARED, "textdiff/spaces/autoencoders", "textdiff/spaces/minilm.py",
                    "textdiff/spaces/registry.py", "textdiff/eval/bleu.py", "stages/features.py"),
    "decoder": ("stages/decoder.py", *SHARED, "textdiff/spaces", "textdiff/processes", "stages/features.py"),
}


def training_code(stage: str, family: str | None = None) -> list[Path]:
    """The paths of ``TRAINING_CODE[stage]``, ``{family}`` filled in (the train stage's family module)."""
    return [Path(p.format(family=family)) for p in TRAINING_CODE[stage]]
