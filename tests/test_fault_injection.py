"""Fault injection on a real training process: SIGKILL at a random step, damage the newest checkpoint, re-run;
the final weights equal an uninterrupted run's bit for bit."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.fault_train import STEPS

SCRIPT = Path(__file__).with_name("fault_train.py")


def start(ckpt: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(SCRIPT), str(ckpt), str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def newest_step(ckpt: Path) -> int:
    pointer = ckpt / "latest"
    try:
        return int(pointer.read_text().strip().split("_")[1])
    except (OSError, ValueError, IndexError):
        return 0


def damage(ckpt: Path, rng: random.Random) -> str:
    """Damage the newest checkpoint in one of the ways a crash or a bad disk does; return what was done."""
    newest = ckpt / (ckpt / "latest").read_text().strip()
    target = rng.choice(["model.safetensors", "ema.safetensors", "optimizer.pt", "state.json"])
    data = (newest / target).read_bytes()
    if rng.random() < 0.5:
        (newest / target).write_bytes(data[: len(data) // 3])
        return f"truncated {target}"
    (newest / target).write_bytes(bytes(rng.randrange(256) for _ in range(len(data))))
    return f"overwrote {target} with random bytes"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("whole")
    proc = start(folder / "ckpt", folder / "final.safetensors")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return load_file(str(folder / "final.safetensors"))


@pytest.mark.parametrize("seed", [0, 1])
def test_killed_and_damaged_training_resumes_to_the_uninterrupted_weights(tmp_path, uninterrupted, seed):
    rng = random.Random(seed)
    kill_after = rng.randrange(20, 200)  # the checkpoint step after which SIGKILL lands
    ckpt, final = tmp_path / "ckpt", tmp_path / "final.safetensors"
    proc = start(ckpt, final)
    deadline = time.monotonic() + 300
    while newest_step(ckpt) < kill_after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, f"training finished before the kill at step {kill_after}; lengthen fault_train.py"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = damage(ckpt, rng)
    rerun = start(ckpt, final)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert "damaged" in err, (done, err)  # the warning names the damaged file
    resumed_from = int(out.split("resumed_from=")[1].split()[0])
    assert 0 < resumed_from < STEPS and resumed_from >= kill_after - 10, (done, resumed_from)
    weights = load_file(str(final))
    for k, v in uninterrupted.items():
        assert torch.equal(weights[k], v), (done, k)

