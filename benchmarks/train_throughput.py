"""Training throughput and MFU of the AR backbone on this machine.

Times AdamW training steps (forward, backward, clip, step) on fixed-size
batches for a few model sizes and reports tokens/s, achieved GFLOP/s and MFU
against the machine's dense matmul peak in the precision timed (fp32: 124–142 GFLOP/s measured on the 2-core
CPU, 135 by default; bf16 about 400; pass --peak / --peak-bf16 for another machine). Prints medians over timed steps.

    python benchmarks/train_throughput.py [--steps 10] [--peak 135e9] [--precision fp32 bf16]

With several ``--precision`` values the configurations are timed in each, interleaved, and the
bf16/fp32 speed ratio is printed (the same autocast as ``train.precision``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from textdiff.params.shared import BackboneParams, TrainParams
from textdiff.device import autocast, resolve_device
from textdiff.data.vocab import Vocab
from textdiff.families import ar
from textdiff.training.loop import make_optimizer


def time_steps(params: BackboneParams, vocab_size: int, batch: int, seq: int, steps: int, device,
               precision: str = "auto") -> list[float]:
    torch.manual_seed(0)
    vocab = Vocab(vocab_size, 0, 1, 2)
    model = ar.build_backbone(params, vocab).to(device).train()
    opt = make_optimizer(model, TrainParams())
    data = torch.randint(3, vocab_size, (batch, seq), device=device)
    times = []
    for i in range(steps + 2):  # two warm-up steps
        t0 = time.perf_counter()
        with autocast(device, precision):
            loss = ar.training_loss(model, data, vocab)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return model, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--peak", type=float, default=135e9, help="dense fp32 matmul peak, FLOP/s")
    parser.add_argument("--peak-bf16", type=float, default=400e9,
                        help="dense bf16 matmul peak, FLOP/s (about 400e9 measured on the 2-core avx512_bf16 CPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", nargs="+", default=["auto"], choices=["auto", "fp32", "bf16"])
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"peak {args.peak / 1e9:.0f} GFLOP/s fp32, {args.peak_bf16 / 1e9:.0f} bf16 (MFU against its precision's)")
    print(f"{'model':>18} {'prec':>5} {'vocab':>6} {'batch':>9} {'params':>8} {'step ms':>8} {'tokens/s':>9} {'GFLOP/s':>8} {'MFU':>5}")
    configs = [(192, 4, 6, 4096), (192, 4, 6, 8192), (256, 4, 8, 4096), (384, 6, 6, 8192)]
    batch, seq = 64, 48
    for d, layers, heads, vocab in configs:
        bp = BackboneParams(d_model=d, n_layers=layers, n_heads=heads, seq_len=seq + 1)
        medians = {}
        for precision in args.precision:
            model, times = time_steps(bp, vocab, batch, seq + 1, args.steps, device, precision)
            med = medians[precision] = statistics.median(times)
            tps = batch * seq / med
            flops = model.flops_per_token(seq, training=True) * tps
            bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
            peak = args.peak_bf16 if bf16 else args.peak
            print(f"{f'd{d} x{layers}':>18} {precision:>5} {vocab:>6} {f'{batch}x{seq}':>9} "
                  f"{model.num_parameters() / 1e6:>7.2f}M {med * 1e3:>8.0f} {tps:>9.0f} {flops / 1e9:>8.1f} "
                  f"{flops / peak:>5.0%}")
        if {"fp32", "bf16"} <= medians.keys():
            print(f"{'':>18} bf16 step is {medians['fp32'] / medians['bf16']:.2f}x faster than fp32")


if __name__ == "__main__":
    main()
