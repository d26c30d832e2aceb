"""A tiny training run for the fault-injection tests: `python tests/fault_train.py CKPT_DIR OUT.safetensors`.

It trains the tiny AR model of tests/test_ar.py on its toy batches with a checkpoint
every 5 steps, then writes the final weights to OUT. One thread, so that two runs
(one killed and resumed, one not) can be compared bit for bit.
"""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_ar import VOCAB, tiny_model, toy_batches  # noqa: E402
from textdiff.config import TrainParams  # noqa: E402
from textdiff.families import ar  # noqa: E402
from textdiff.training.loop import train  # noqa: E402

STEPS = 300


def main(checkpoint_dir: str, out: str) -> None:
    torch.set_num_threads(1)
    cfg = TrainParams(steps=STEPS, lr=3e-3, warmup_steps=10, checkpoint_every=5, log_every=50, ema_decay=0.99)
    model = tiny_model()
    result = train(model, lambda m, b: ar.training_loss(m, b, VOCAB), toy_batches, cfg,
                   checkpoint_dir=Path(checkpoint_dir), fingerprint="fault", device=torch.device("cpu"),
                   progress=False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)
    print(f"resumed_from={result.resumed_from} steps={result.steps}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
