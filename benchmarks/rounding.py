"""Nearest-embedding rounding: FAISS vs torch, and the cost of clamping in a sampling step.

Part 1 times exact rounding of 4096 queries against vocabularies of 8k, 30k
and 100k rows at dims 16 and 128, for both backends (shortlist + exact
re-rank, so both return the same tokens), and the plain torch matmul+argmax
many codebases use. Part 2 times one reverse step of the default embedding
model with and without clamping.

    python benchmarks/rounding.py [--repeats 5]
"""

from __future__ import annotations

import argparse

import torch

from textdiff.config import load_params
from textdiff.data.vocab import Vocab
from textdiff.families import embedding as E
from textdiff.sampling.gaussian_sampler import SamplerConfig, sample
from textdiff.sampling.rounding import NearestEmbedding
from textdiff.training.peak import median_seconds


def median_time(fn, repeats: int) -> float:
    return median_seconds(fn, torch.device("cpu"), repeats, warmup=1)


def rounding_table(repeats: int) -> None:
    print(f"{'vocab':>7} {'dim':>4} {'faiss s':>8} {'torch s':>8} {'matmul s':>9} {'torch/faiss':>11} {'same':>5}")
    g = torch.Generator().manual_seed(0)
    for vocab in (8192, 30522, 100_000):
        for dim in (16, 128):
            table = torch.randn(vocab, dim, generator=g)
            queries = table[torch.randint(0, vocab, (4096,), generator=g)] + 0.3 * torch.randn(4096, dim, generator=g)
            faiss_nn, torch_nn = NearestEmbedding("faiss"), NearestEmbedding("torch")
            tf = median_time(lambda: faiss_nn(queries, table), repeats)
            tt = median_time(lambda: torch_nn(queries, table), repeats)
            tm = median_time(lambda: (queries @ table.T * 2 - (table * table).sum(1)).argmax(1), repeats)
            same = torch.equal(faiss_nn(queries, table), torch_nn(queries, table))
            print(f"{vocab:>7} {dim:>4} {tf:>8.3f} {tt:>8.3f} {tm:>9.3f} {tt / tf:>10.2f}x {str(same):>5}")


def clamping_step(repeats: int) -> None:
    params = load_params("params.yaml").row("embedding")
    torch.manual_seed(0)
    model = E.build(params, Vocab(4096, 0, 1, 2, 4)).eval()
    nearest = NearestEmbedding(params.sample.rounding)
    shape = (128, params.model.seq_len, params.model.embedding_dim)
    for clamp in (False, True):
        sp = params.sample.model_copy(update={"clamp": clamp})
        fn = E.clamping(model, sp, nearest)
        cfg = SamplerConfig(steps=10, self_condition=True)
        with torch.no_grad():
            t = median_time(lambda: sample(model.predict_x0, model.process, shape, cfg,
                                           generator=torch.Generator().manual_seed(0), denoised_fn=fn), repeats)
        print(f"  clamp {'on ' if clamp else 'off'}: {t / 10 * 1000:.1f} ms per reverse step (batch 128 x {shape[1]} tokens)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}; 4096 queries; median of {args.repeats}")
    rounding_table(args.repeats)
    print("one reverse step of the default embedding model:")
    clamping_step(args.repeats)


if __name__ == "__main__":
    main()
