"""Held-out likelihood against training FLOPs, per row: which family learns fastest per FLOP.

Each (row, budget) point is a fresh run of the row's ``fit`` (its params from
params.yaml, default sizes) under that FLOP budget, with its own warmup and
cosine schedule, exactly as the ``train`` stage trains under ``budget.train_flops``;
then the row's held-out likelihood (exact for AR, the ELBO bound for the discrete
rows) on the test split and, for the absorbing rows, the masked-NLL-by-share probe
(textdiff.eval.context_probe). Rows without a token likelihood (the continuous
rows) are skipped with a note. Points are appended to ``OUT/points.jsonl`` as they
finish (a killed run keeps them; a re-run skips points already there), and
``OUT/learning_curves.png`` plots held-out ppl against FLOPs.

    .venv/bin/python benchmarks/learning_curves.py --rows ar mdlm --budgets 1e13 4e13 \\
        [--positions learned] [--out benchmarks/results/learning_curves]

Run it in the repository after ``dvc repro prepare tokenizer`` (it reads data/prepared and data/tokenizer).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from textdiff.config import load_params
from textdiff.data.batching import encode_sequences, pad_batch
from textdiff.data.tokenizer import load_tokenizer
from textdiff.data.vocab import Vocab
from textdiff.device import resolve_device
from textdiff.eval.context_probe import absorbing_predictor, masked_nll_by_share, unigram_nll
from textdiff.families import get_family
from textdiff.families.contract import RunContext
from textdiff.io import read_jsonl
from textdiff.report.compute_gap import training_digest


CURVE_AT = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)  # the learned check's figures along each run


def benchmark_section(section, positions: str | None, ema_decay: float | None = None, lr: float | None = None,
                      batch_size: int | None = None, model: dict | None = None):
    """The row's params with no wall-clock cut (the budget decides the steps), optionally other positions,
    EMA, lr or batch size."""
    train = {"max_minutes": 1e6}
    if batch_size is not None:
        train["batch_size"] = batch_size
    if ema_decay is not None:
        train["ema_decay"] = ema_decay
    if lr is not None:
        train["lr"] = lr
    update = {"train": section.train.model_copy(update=train)}
    model = dict(model or {})
    if positions is not None:
        model["positions"] = positions
    if model:
        update["model"] = section.model.model_copy(update=model)
    return section.model_copy(update=update)


def probe(model, tokenizer, train_texts, test_texts) -> dict:
    vocab, L = model.vocab, model.config.seq_len
    x = pad_batch(encode_sequences(tokenizer, test_texts, L), vocab.pad_id, L)
    protect = torch.zeros(L, dtype=torch.bool)
    protect[0] = True  # <bos> is never masked in training
    shares = masked_nll_by_share(absorbing_predictor(model), x, vocab.pad_id, vocab.mask_id,
                                 generator=torch.Generator().manual_seed(1), protect=protect)
    unigram = unigram_nll(encode_sequences(tokenizer, train_texts, L), x, vocab.pad_id, vocab.size, protect)
    return {"masked_nll_by_share": {str(k): v for k, v in shares.items()}, "unigram_nll": unigram}


def data_sha256() -> str | None:
    stats = Path("data/prepared/stats.json")
    return json.loads(stats.read_text()).get("data_sha256") if stats.exists() else None


def run_point(p, row: str, budget: float, tokenizer, train_texts, test_texts, positions, device,
              ema_decay=None, lr=None, batch_size=None, model=None) -> dict:
    family = get_family(p.row(row).family)
    overridden = any(v is not None for v in (positions, ema_decay, lr, batch_size)) or bool(model)
    section = benchmark_section(p.row(row), positions, ema_decay, lr, batch_size, model)
    t0 = time.perf_counter()
    probe = None
    if family.LIKELIHOOD_FOOTING is not None:  # the in-training curve: the learned check's figures along the budget
        from textdiff.eval.learning_evidence import context_blind_bar, curve_probe

        valid = [r["text"] for r in read_jsonl(Path("data/prepared/valid.jsonl"))]
        bar = context_blind_bar(tokenizer, train_texts, valid, section.model.seq_len, family.LIKELIHOOD_FOOTING)
        probe = curve_probe(family, tokenizer, test_texts, bar, section.model.seq_len, seed=p.seed, device=device)
    model, result = family.fit(section, tokenizer, train_texts,
                               RunContext(seed=p.seed, device=device, progress=False, budget_flops=budget,
                                          curve_probe=probe, curve_at=CURVE_AT))
    wall = time.perf_counter() - t0
    like = family.likelihood(model, tokenizer, test_texts, device=device)
    point = {"row": row, "budget_flops": budget, "train_flops": result.flops, "steps": result.steps,
             "positions": section.model.positions, "ema_decay": section.train.ema_decay, "lr": section.train.lr,
             "batch_size": section.train.batch_size, "d_model": section.model.d_model,
             "n_layers": section.model.n_layers, "parameters": model.num_parameters(), "train_wall_s": wall,
             "heldout_ppl": like.get("heldout_ppl"), "heldout_ppl_ci": like.get("heldout_ppl_ci"),
             "heldout_nats": like.get("heldout_nats_per_token"), "heldout_nats_se": like.get("heldout_nats_per_token_se"),
             "bound": like.get("heldout_ppl_bound"), "curve": result.curve,
             "train_sequences": len(train_texts), "epochs": result.steps * section.train.batch_size / len(train_texts),
             "test_sentences": len(test_texts), "data_sha256": data_sha256(), "training_digest": training_digest(p, row),
             "overridden": overridden,
             "seed": p.seed}
    if p.row(row).family != "ar" and getattr(model.vocab, "mask_id", None) is not None:
        try:
            point.update(probe(model, tokenizer, train_texts, test_texts[:256]))
        except (TypeError, ValueError):
            pass  # not an absorbing model
    return point


def plot(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    def key_of(q):
        return (q["row"], q["positions"], q.get("ema_decay", 0.0), q["lr"], q.get("batch_size", 64),
                q.get("d_model", 128), q.get("n_layers", 4))

    for key in sorted({key_of(q) for q in points}):
        pts = sorted((q["train_flops"], q["heldout_ppl"]) for q in points if key_of(q) == key and q["heldout_ppl"])
        if pts:
            ax.plot(*zip(*pts), marker="o", label=f"{key[0]} ({key[1]}, lr {key[3]:g}, batch {key[4]}, d{key[5]}×{key[6]}" + (f", EMA {key[2]:g})" if key[2] else ")"))
    ax.set(xscale="log", yscale="log", xlabel="training FLOPs", ylabel="held-out perplexity (bound for diffusion)",
           title="Learning curves: held-out ppl vs training FLOPs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", default=["ar", "mdlm", "sedd_absorb", "d3pm_absorb"])
    ap.add_argument("--budgets", nargs="+", type=float, default=[1e13, 4e13])
    ap.add_argument("--positions", choices=["rotary", "learned"], default=None,
                    help="override every row's model.positions (default: as in params.yaml)")
    ap.add_argument("--ema-decay", type=float, default=None,
                    help="override every row's train.ema_decay (default: as in params.yaml)")
    ap.add_argument("--lr", type=float, default=None, help="override every row's train.lr")
    ap.add_argument("--batch-size", type=int, default=None, help="override every row's train.batch_size")
    ap.add_argument("--d-model", type=int, default=None, help="override every row's model.d_model")
    ap.add_argument("--n-layers", type=int, default=None, help="override every row's model.n_layers")
    ap.add_argument("--test-sentences", type=int, default=512)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/learning_curves"))
    args = ap.parse_args()
    p = load_params(Path("params.yaml"))
    device = resolve_device(p.device)
    tokenizer = load_tokenizer(Path("data/tokenizer"))
    train_texts = [r["text"] for r in read_jsonl(Path("data/prepared/train.jsonl"))]
    test_texts = [r["text"] for r in read_jsonl(Path("data/prepared/test.jsonl"))][:args.test_sentences]
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "points.jsonl"
    done = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    for budget in args.budgets:
        for row in args.rows:
            positions = args.positions or p.row(row).model.positions
            ema = p.row(row).train.ema_decay if args.ema_decay is None else args.ema_decay
            lr = p.row(row).train.lr if args.lr is None else args.lr
            batch = p.row(row).train.batch_size if args.batch_size is None else args.batch_size
            shape = {k: v for k, v in (("d_model", args.d_model), ("n_layers", args.n_layers)) if v is not None}
            d_model = shape.get("d_model", p.row(row).model.d_model)
            n_layers = shape.get("n_layers", p.row(row).model.n_layers)
            if any(q["row"] == row and q["budget_flops"] == budget and q["positions"] == positions
                   and q.get("ema_decay", 0.0) == ema and q.get("lr", p.row(row).train.lr) == lr
                   and q.get("batch_size", 64) == batch and q.get("d_model", 128) == d_model
                   and q.get("n_layers", 4) == n_layers for q in done):
                continue
            if get_family(p.row(row).family).likelihood.__module__ not in ("textdiff.eval.elbo", "textdiff.families.ar"):
                print(f"{row}: no token likelihood (continuous row); skipped", flush=True)
                continue
            point = run_point(p, row, budget, tokenizer, train_texts, test_texts, args.positions, device,
                              args.ema_decay, args.lr, args.batch_size, shape)
            done.append(point)
            with log.open("a") as f:
                f.write(json.dumps(point) + "\n")
            shares = point.get("masked_nll_by_share")
            for q in point["curve"]:
                print(f"  {q['flops']:.2e} FLOPs: nats {q['heldout_nats']:.3f}, margin {q['context_blind_margin']:.3f}, "
                      f"{q['probe']} {q['probe_value']:.3f}", flush=True)
            print(f"{row:12s} {budget:.1e} FLOPs ({point['steps']} steps, {point['train_wall_s']:.0f} s): "
                  f"held-out ppl {point['heldout_ppl']:.1f}"
                  + (f"; masked NLL by share {shares}, unigram {point['unigram_nll']:.2f}" if shares else ""),
                  flush=True)
    plot(done, args.out / "learning_curves.png")
    print(f"wrote {log} and {args.out / 'learning_curves.png'}")


if __name__ == "__main__":
    main()
