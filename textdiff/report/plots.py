"""The report's figures, drawn from metrics dicts and written atomically as PNG."""

from __future__ import annotations

from pathlib import Path

from textdiff.io import atomic_path
from textdiff.report.tables import row_label


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    plt = pyplot()
    with atomic_path(path) as tmp:
        fig.tight_layout()
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def plot_quality(rows: list[dict], path: Path) -> None:
    """gen_ppl against MAUVE with both intervals; a degenerate row is drawn hollow."""
    fig, ax = pyplot().subplots(figsize=(5.5, 4))
    for r in rows:
        x, y = r["gen_ppl"], r["mauve"]
        xci, yci = r.get("gen_ppl_ci") or (x, x), r.get("mauve_ci") or (y, y)
        # a percentile interval need not contain the point (small, skewed samples): clip its arms at 0
        xerr = [[max(0.0, x - xci[0])], [max(0.0, xci[1] - x)]]
        yerr = [[max(0.0, y - yci[0])], [max(0.0, yci[1] - y)]]
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", ms=5,
                    capsize=3, mfc="none" if r.get("degenerate") else None)
        ax.annotate(row_label(r), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("generative perplexity under the judge LM (log)")
    ax.set_ylabel("MAUVE vs held-out text")
    ax.set_title("Quality (95% intervals): lower-right is worse")
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def plot_losses(curves: dict[str, list[tuple[int, float]]], path: Path) -> bool:
    """Each row's training loss against step; False when no row has recorded one."""
    fig, ax = pyplot().subplots(figsize=(5.5, 4))
    drawn = False
    for name, pts in curves.items():
        if pts:
            ax.plot(*zip(*pts), label=name)
            drawn = True
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("Training loss (each family's own loss)")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
    save_figure(fig, path)
    return drawn


def plot_steps(sweeps: dict[str, dict], path: Path) -> None:
    """The discrete samplers' gen_ppl and entropy against the number of sampling steps."""
    fig, (left, right) = pyplot().subplots(1, 2, figsize=(10, 4))
    for name, sweep in sweeps.items():
        pts = sorted(sweep["points"], key=lambda pt: pt["steps"])
        xs = [pt["steps"] for pt in pts]
        left.plot(xs, [pt["gen_ppl"] for pt in pts], marker="o", label=name)
        right.plot(xs, [pt["entropy"] for pt in pts], marker="o", label=name)
    for ax, label in ((left, "generative perplexity (log)"), (right, "unigram entropy (nats)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sampling steps")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    left.set_yscale("log")
    left.legend(fontsize=8)
    fig.suptitle("Discrete samplers: quality against steps")
    save_figure(fig, path)


def plot_learning_curves(curves: dict[str, list[dict]], path: Path) -> bool:
    """Each row's held-out margin below the positional unigram (nats/token) and its context probe against training
    FLOPs (the points its training measured, textdiff.eval.learning_evidence), each with its row's threshold
    dashed; False when no row has a curve."""
    from textdiff.report.learned import MARGIN, PROBE_MIN

    fig, (left, right) = pyplot().subplots(1, 2, figsize=(10, 4))
    drawn = False
    for name, pts in curves.items():
        if not pts:
            continue
        xs = [pt["flops"] for pt in pts]
        line, = left.plot(xs, [pt["context_blind_margin"] for pt in pts], marker="o", label=name)
        left.axhline(MARGIN[pts[-1]["graph"]], color=line.get_color(), ls="--", lw=0.8)
        right.plot(xs, [pt["probe_value"] for pt in pts], marker="o", color=line.get_color(), label=name)
        if pts[-1]["probe"] in PROBE_MIN:
            right.axhline(PROBE_MIN[pts[-1]["probe"]], color=line.get_color(), ls="--", lw=0.8)
        drawn = True
    left.set_ylabel("nats/token below the positional unigram")
    right.set_ylabel("context probe (nats)")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("training FLOPs")
        ax.grid(alpha=0.3)
    if drawn:
        left.legend(fontsize=8)
    fig.suptitle("Learning curves on 256 held-out sentences (dashed: each row's learned threshold)")
    save_figure(fig, path)
    return drawn
