"""A tiny data-parallel training run: `python tests/ddp_train.py OUT.safetensors [CKPT_DIR [STOP_AFTER]]`,
alone or under `torchrun --nproc_per_node 2` (gloo). Rank 0 writes the final weights."""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_ar import VOCAB, tiny_model, toy_batches  # noqa: E402
from textdiff.config import TrainParams  # noqa: E402
from textdiff.families import ar  # noqa: E402
from textdiff.training.distributed import current_world  # noqa: E402
from textdiff.training.loop import train  # noqa: E402

STEPS = 24


def main(out: str, checkpoint_dir: str | None = None, stop_after: str | None = None) -> None:
    torch.set_num_threads(1)
    cfg = TrainParams(steps=STEPS, lr=3e-3, warmup_steps=4, checkpoint_every=6, log_every=4, ema_decay=0.9,
                      weight_decay=0.1)
    model = tiny_model()
    result = train(model, lambda m, b: ar.training_loss(m, b, VOCAB), toy_batches, cfg,
                   checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None, fingerprint="ddp",
                   device=torch.device("cpu"), progress=False, stop_after=int(stop_after) if stop_after else None)
    world = current_world()
    if world.is_main:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)
        print(f"world={world.size} steps={result.steps} resumed_from={result.resumed_from} "
              f"tokens={result.tokens} loss={result.final_loss:.6f}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
