"""Data-parallel training for real: 2 torchrun processes on gloo train to the weights of 1 process at the same
global batch, and a killed 2-process run resumes from its checkpoint to the same weights."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from textdiff.errors import InputError
from textdiff.config import ParamsError, parse_params
from textdiff.training.distributed import World, shard, step_seed

SCRIPT = Path(__file__).with_name("ddp_train.py")


def launch(processes: int, *args) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, str(SCRIPT), *map(str, args)]
    if processes > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               *cmd[1:]]  # standalone: a local rendezvous on a free port (several test runs on one machine)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out.stdout


def assert_close(a: dict, b: dict) -> None:
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-4, atol=3e-5), (k, (a[k] - b[k]).abs().max())


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "w.safetensors"
    log = launch(1, out)
    return load_file(str(out)), log


def test_two_gloo_processes_train_to_the_weights_of_one(one_process, tmp_path):
    weights, log = one_process
    two = launch(2, tmp_path / "w.safetensors")
    assert "world=2" in two and "world=1" in log
    assert two.split("tokens=")[1].split()[0] == log.split("tokens=")[1].split()[0]  # same global batches
    assert_close(load_file(str(tmp_path / "w.safetensors")), weights)
    other = {k: v + 1e-3 for k, v in weights.items() if v.is_floating_point()}
    with pytest.raises(AssertionError):  # the comparison can fail
        assert_close(other, weights)


def test_a_killed_two_process_run_resumes_to_the_same_weights(one_process, tmp_path):
    weights, _ = one_process
    launch(2, tmp_path / "w.safetensors", tmp_path / "ckpt", 14)  # stops after its step-12 checkpoint
    log = launch(2, tmp_path / "w.safetensors", tmp_path / "ckpt")
    assert "resumed_from=12" in log
    assert_close(load_file(str(tmp_path / "w.safetensors")), weights)


def test_shard_is_a_contiguous_slice_and_refuses_an_uneven_batch():
    batch = torch.arange(12).reshape(6, 2)
    assert shard(batch, World(1, 2)).tolist() == [[6, 7], [8, 9], [10, 11]]
    assert shard(batch, World(0, 1)) is batch
    with pytest.raises(InputError, match="batch_size .* divisible by the 4 processes"):
        shard(batch, World(0, 4))


def test_each_rank_step_and_run_gets_its_own_seed():
    seeds = {step_seed(base, step, rank) for base in (0, 1, 2**40 + 3) for step in range(50) for rank in range(4)}
    assert len(seeds) == 3 * 50 * 4
    assert step_seed(7, 3, 1) == step_seed(7, 3, 1)


def test_a_batch_that_does_not_split_across_the_processes_is_a_params_error():
    raw = {"rows": {"ar": {"family": "ar", "train": {"batch_size": 10}}}, "train_processes": 4}
    with pytest.raises(ParamsError, match=r"rows\.ar\.train\.batch_size \(10\) must be divisible by train_processes \(4\)"):
        parse_params(raw)
    raw["train_processes"] = 5
    assert parse_params(raw).train_processes == 5
