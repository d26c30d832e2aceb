"""The dense matmul peak of the device a run trains on, measured: what MFU is quoted against.

A square product of 2048 (CPU) or 8192 (GPU) in the training precision, the median of a few timed repeats
after warm-up; about a second on the 2-core CPU. Measured per run because these machines' fp32 peak read
anywhere from 124 to 190 GFLOP/s from one day to the next."""

from __future__ import annotations

import statistics
import time

import torch


def matmul_peak(device: torch.device, dtype: torch.dtype = torch.float32, n: int | None = None,
                repeats: int = 7, warmup: int = 3) -> float:
    """Dense n×n matmul FLOP/s on ``device`` in ``dtype``: 2n³ over the median time of ``repeats`` products."""
    n = n or (8192 if device.type == "cuda" else 2048)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times)
