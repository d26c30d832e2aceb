"""Progress a user can watch: a bar on a terminal, a line every few seconds in a log.

``Progress(total, "train")`` counts units (steps, batches, stages). On a terminal (stderr is a TTY) it draws a
tqdm bar; otherwise (DVC's and Prefect's logs, CI) it prints one line every ``every_s`` seconds and one at the
end: ``[train] 120/600 steps (20%) loss 5.123, tokens per s 3,456, 1m05s elapsed, ETA 4m20s``. The ETA is the remaining
units at the average rate since the first update (the first unit, often slower, is left out of the rate once
there are more). ``TEXTDIFF_PROGRESS`` overrides the choice: ``bar``, ``lines`` or ``off``.
"""

from __future__ import annotations

import os
import sys
import time

EVERY_S = 10.0


def mode() -> str:
    chosen = os.environ.get("TEXTDIFF_PROGRESS", "").strip().lower()
    if chosen in ("bar", "lines", "off"):
        return chosen
    return "bar" if sys.stderr.isatty() else "lines"


def clock(seconds: float) -> str:
    """``1h02m``, ``4m20s`` or ``12s``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """Units done of ``total``; ``update(n, **figures)`` after each, ``close()`` at the end (or use ``with``).
    ``figures`` (a loss, tokens/s) are shown beside the count as given (floats to 4 significant digits)."""

    def __init__(self, total: int, label: str, *, enabled: bool = True, every_s: float = EVERY_S, unit: str = "",
                 initial: int = 0):
        self.total, self.label, self.every_s, self.unit = total, label, every_s, unit
        self.done = self.start_done = initial
        self.mode = mode() if enabled else "off"
        self.started = self.last_line = time.perf_counter()
        self.first_at: tuple[float, int] | None = None  # (time, units) after the first update: the rate's origin
        self.figures: dict = {}
        self.bar = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=label, mininterval=1.0, unit=unit or "it")

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1, **figures) -> None:
        self.done += n
        self.figures.update(figures)
        now = time.perf_counter()
        if self.first_at is None:
            self.first_at = (now, self.done)
        if self.bar is not None:
            self.bar.update(n)
            if figures:
                self.bar.set_postfix({k: format_figure(v) for k, v in self.figures.items()}, refresh=False)
        elif self.mode == "lines" and now - self.last_line >= self.every_s:
            self.last_line = now
            print(self.line(now), file=sys.stderr, flush=True)

    def eta_s(self, now: float | None = None) -> float | None:
        """Seconds left at the rate since the first update; None before two updates."""
        now = time.perf_counter() if now is None else now
        if self.first_at is None or self.done <= self.first_at[1] or not self.total:
            return None
        rate = (self.done - self.first_at[1]) / max(now - self.first_at[0], 1e-9)
        return max(self.total - self.done, 0) / rate

    def line(self, now: float | None = None) -> str:
        now = time.perf_counter() if now is None else now
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        shown = ", ".join(f"{k.replace('_', ' ')} {format_figure(v)}" for k, v in self.figures.items())
        eta = self.eta_s(now)
        return (f"[{self.label}] {self.done}/{self.total}{' ' + self.unit if self.unit else ''}{share}"
                f"{' ' + shown if shown else ''}, {clock(now - self.started)} elapsed"
                + (f", ETA {clock(eta)}" if eta is not None and self.done < self.total else ""))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.mode == "lines" and self.done > self.start_done:
            print(self.line(), file=sys.stderr, flush=True)
        self.mode = "off"


def format_figure(value) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)
