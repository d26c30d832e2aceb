"""train.precision: what autocast each setting gives, and a bf16 training run on CPU that learns."""

import pytest
import torch

from tests.test_ar import VOCAB, tiny_model, toy_batches
from textdiff.config import ParamsError, TrainParams, parse_params
from textdiff.device import autocast
from textdiff.families import ar
from textdiff.training.loop import train

CPU = torch.device("cpu")


@pytest.mark.parametrize("precision,dtype", [("auto", torch.float32), ("fp32", torch.float32),
                                             ("bf16", torch.bfloat16)])
def test_the_forward_runs_in_the_asked_precision_on_cpu(precision, dtype):
    layer = torch.nn.Linear(4, 4)
    with autocast(CPU, precision):
        assert layer(torch.randn(2, 4)).dtype == dtype
    assert layer.weight.dtype == torch.float32  # the weights stay fp32


def test_a_bf16_run_learns_about_as_well_as_fp32():
    losses = {}
    for precision in ("fp32", "bf16"):
        model = tiny_model()
        cfg = TrainParams(steps=40, lr=3e-3, warmup_steps=4, log_every=40, precision=precision)
        result = train(model, lambda m, b: ar.training_loss(m, b, VOCAB), toy_batches, cfg, device=CPU, checkpoint_dir=None, fingerprint="t",
                       progress=False)
        losses[precision] = result.final_loss
        assert next(model.parameters()).dtype == torch.float32
    start = torch.log(torch.tensor(float(VOCAB.size))).item()
    assert losses["fp32"] < start - 1.0 and losses["bf16"] < start - 1.0, losses
    assert abs(losses["bf16"] - losses["fp32"]) < 0.25, losses


def test_an_unknown_precision_names_the_key():
    with pytest.raises(ParamsError, match=r"rows\.ar\.train\.precision"):
        parse_params({"rows": {"ar": {"family": "ar", "train": {"precision": "fp16"}}}})


def test_measuring_the_cpu_precision_leaves_the_training_random_stream_alone(monkeypatch):
    """`auto` measures bf16 against fp32 once per process, just after the family seeded torch: the measurement draws
    its operands from a generator of its own, so `auto` choosing fp32 trains exactly as `fp32` written out (before,
    the first run of a process drew different batches and noise from the second)."""
    from textdiff.training import peak

    monkeypatch.setattr(peak, "_CHOSEN", {})
    torch.manual_seed(0)
    before = torch.get_rng_state().clone()
    peak.resolve_precision(torch.device("cpu"), "auto")
    peak.matmul_peak(torch.device("cpu"), n=64, repeats=1, warmup=0)
    assert torch.equal(torch.get_rng_state(), before)
