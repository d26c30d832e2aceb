"""The dense matmul peak of the device a run trains on, measured: what MFU is quoted against.

A square product of 2048 (CPU) or 8192 (GPU) in the training precision, the median of a few timed repeats
after warm-up; about a second on the 2-core CPU. Measured per run because these machines' fp32 peak read
anywhere from 124 to 190 GFLOP/s from one day to the next."""

from __future__ import annotations

import statistics
import time

import torch


def median_seconds(fn, device: torch.device, repeats: int, warmup: int = 2) -> float:
    """The median wall time of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones, waiting for the GPU."""
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_peak(device: torch.device, dtype: torch.dtype = torch.float32, n: int | None = None,
                repeats: int = 7, warmup: int = 3) -> float:
    """Dense n×n matmul FLOP/s on ``device`` in ``dtype``: 2n³ over the median time of ``repeats`` products."""
    n = n or (8192 if device.type == "cuda" else 2048)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    return 2 * n ** 3 / median_seconds(lambda: a @ b, device, repeats, warmup)


def mfu_record(result, device: torch.device, precision: str) -> dict:
    """The matmul peak in the precision the run trained in, measured now, and the run's model FLOPs utilisation
    against it (``result``: a TrainResult's ``flops`` and ``wall_s``). CPU runs only: the report's MFU column."""
    if device.type != "cpu" or not result.wall_s:
        return {"peak_flops": None, "mfu_vs_cpu_peak": None}
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32  # auto is fp32 on CPU
    peak = matmul_peak(device, dtype)
    return {"peak_flops": peak, "peak_dtype": str(dtype).removeprefix("torch."),
            "mfu_vs_cpu_peak": result.flops / result.wall_s / peak}
