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


def operand_generator(device: torch.device) -> torch.Generator:
    """Random operands for the measurements from a generator of their own: a measurement made once per process
    (``train.precision: auto``) must not move the training run's random stream, or `auto` choosing fp32 would
    train differently from `fp32` written out."""
    return torch.Generator(device=device).manual_seed(0)


def matmul_peak(device: torch.device, dtype: torch.dtype = torch.float32, n: int | None = None,
                repeats: int = 7, warmup: int = 3) -> float:
    """Dense n×n matmul FLOP/s on ``device`` in ``dtype``: 2n³ over the median time of ``repeats`` products.

    On a CPU the size is capped so that one product takes at most about 0.5 s at the rate a 256³ product shows: bf16 on
    an AVX2-only CPU runs at 0.3 GFLOP/s, where ten 2048³ products would take ten minutes."""
    n = n or (8192 if device.type == "cuda" else cpu_peak_size(dtype))
    g = operand_generator(device)
    a, b = (torch.randn(n, n, device=device, dtype=dtype, generator=g) for _ in range(2))
    return 2 * n ** 3 / median_seconds(lambda: a @ b, device, repeats, warmup)


PROBE_SHAPE = (3072, 128, 512)  # (tokens, d, 4d): a training batch of 64 × 48 through an MLP of the d128 backbone
BF16_MARGIN = 1.1  # auto picks bf16 on a CPU only when it measures at least this much faster than fp32


def choose_cpu_precision(shape: tuple[int, int, int] = PROBE_SHAPE) -> tuple[str, str]:
    """``train.precision: auto`` on a CPU: ("bf16" | "fp32", why), from a short measurement on this machine.

    A small bf16 product first (256³, 34 MFLOP): on a CPU without bf16 instructions (AMD EPYC with AVX2 only:
    0.3 GFLOP/s) it already takes ~0.1 s and decides; otherwise the median of 3 products of a training-like
    shape in each precision. bf16 only when it is ``BF16_MARGIN`` × faster."""
    cpu = torch.device("cpu")
    g = operand_generator(cpu)
    small = [torch.randn(256, 256, generator=g) for _ in range(2)]
    fp32_small = 2 * 256 ** 3 / median_seconds(lambda: small[0] @ small[1], cpu, 3, 1)
    bf = [x.bfloat16() for x in small]
    bf16_small = 2 * 256 ** 3 / median_seconds(lambda: bf[0] @ bf[1], cpu, 1, 0)
    if bf16_small * 4 < fp32_small:
        return "fp32", (f"auto: bf16 matmul {bf16_small / 1e9:.2g} GFLOP/s against fp32 {fp32_small / 1e9:.3g} "
                        "on this CPU (256³ products): fp32")
    m, k, n = shape
    a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
    rates = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        x, y = a.to(dtype), b.to(dtype)
        rates[name] = 2 * m * k * n / median_seconds(lambda: x @ y, cpu, 3, 1)
    choice = "bf16" if rates["bf16"] > BF16_MARGIN * rates["fp32"] else "fp32"
    return choice, (f"auto: bf16 matmul {rates['bf16'] / 1e9:.3g} GFLOP/s against fp32 {rates['fp32'] / 1e9:.3g} "
                    f"on this CPU ({m}×{k}×{n} products): {choice}")


_CHOSEN: dict[str, tuple[str, str]] = {}


def resolve_precision(device: torch.device, precision: str) -> tuple[str, str]:
    """The precision a run trains in, and why: as written, bf16 on CUDA under auto, else measured once per process
    on a CPU (``choose_cpu_precision``)."""
    if precision != "auto":
        return precision, "set by train.precision"
    if device.type == "cuda":
        return "bf16", "auto: bf16 autocast on CUDA"
    if device.type != "cpu":
        return "fp32", f"auto: fp32 on {device.type}"
    if "cpu" not in _CHOSEN:
        _CHOSEN["cpu"] = choose_cpu_precision()
    return _CHOSEN["cpu"]


def cpu_peak_size(dtype: torch.dtype, largest: int = 2048, seconds: float = 0.5) -> int:
    """The largest power-of-two n ≤ ``largest`` whose n³ product takes about ``seconds`` at this CPU's rate in
    ``dtype`` (measured on one 256³ product)."""
    g = operand_generator(torch.device("cpu"))
    a, b = (torch.randn(256, 256, dtype=dtype, generator=g) for _ in range(2))
    rate = 2 * 256 ** 3 / median_seconds(lambda: a @ b, torch.device("cpu"), 1, 1)
    n = 256
    while n < largest and 2 * (2 * n) ** 3 / rate <= seconds:
        n *= 2
    return n


def mfu_record(result, device: torch.device, precision: str) -> dict:
    """The matmul peak in the precision the run trained in, measured now, and the run's model FLOPs utilisation
    against it (``result``: a TrainResult's ``flops`` and ``wall_s``). CPU runs only: the report's MFU column."""
    if device.type != "cpu" or not result.wall_s:
        return {"peak_flops": None, "mfu_vs_cpu_peak": None}
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32  # the resolved precision (resolve_precision)
    peak = matmul_peak(device, dtype)
    return {"peak_flops": peak, "peak_dtype": str(dtype).removeprefix("torch."),
            "mfu_vs_cpu_peak": result.flops / result.wall_s / peak}
