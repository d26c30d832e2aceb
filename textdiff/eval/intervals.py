"""95 % bootstrap intervals over samples for the sample metrics (DESIGN.md §6, §9).

A resample draws n of the n generated texts with replacement (a seeded
``numpy.random.Generator``); one resample is a vector of counts w_i (how often
text i was drawn, Σ w_i = n). All resamples share the same draws, so the metrics
move together as they would under a new set of samples. The expensive work (judge
scores, n-gram tables, MiniLM features) is done once per text; a resample only
re-weights per-text numbers:

- gen_ppl = exp(Σ w_i·nll_i / Σ w_i·count_i): the ratio of sums of the resample,
  token-weighted as the point value (never a mean of per-text ratios);
- entropy = Σ w_i·H_i / n: the mean per-text unigram entropy of the resample;
- mem = Σ w_i·hits_i / Σ w_i·grams_i: the pooled share of the resample's 4-grams
  (with multiplicity) that occur in the training split;
- div = ∏_{n=2..4} unique / total n-grams pooled over the resample, see
  ``DiversityTable`` for what a drawn-twice text means;
- mauve: recomputed by mauve-text on resampled feature rows, see ``mauve_interval``.

gen_ppl, entropy and mem use the plain percentile interval (the 2.5 % and 97.5 %
quantiles of the resampled values). div and mauve are not smooth in the sample:
they count ties (identical n-grams, points falling in one k-means cell), and a
resample's duplicated texts are ties a new set of samples would not have. Their
bootstrap distributions are shifted (for 256 real sentences the literal pooled-
duplicates div drops from 0.83 to ≈ 0.22, MAUVE real-vs-real from 0.97 to ≈ 0.84)
while their spread is still usable (div's matches; MAUVE's is 2–4× too wide, so its
interval is conservative, see ``mauve_interval``); for these two the interval is the
*recentred* percentile interval [θ̂ − (m − q₂.₅), θ̂ + (q₉₇.₅ − m)], m the median of
the resampled values, clipped to the metric's range. It always contains θ̂.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from textdiff.eval.ngrams import ngrams, words
from textdiff.progress import Progress

CI_LEVEL = 0.95


# --------------------------------------------------------------------------- resamples and intervals


def resample_counts(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n, B) draw counts: column b says how many times resample b drew each of the n texts."""
    if n < 1 or resamples < 1:
        return np.zeros((n, 0), dtype=np.int64)
    idx = rng.integers(0, n, size=(resamples, n))
    counts = np.zeros((resamples, n), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(resamples), n), idx.ravel()), 1)
    return counts.T


def percentile_interval(values: np.ndarray, level: float = CI_LEVEL) -> list[float] | None:
    """[lo, hi]: the (1−level)/2 and (1+level)/2 quantiles of the defined (finite) resampled values;
    None when fewer than half of the resamples define the metric."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.size < values.size / 2:
        return None
    lo, hi = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def recentred_interval(values: np.ndarray, point: float, level: float = CI_LEVEL,
                       bounds: tuple[float, float] = (-math.inf, math.inf)) -> list[float] | None:
    """[θ̂ − (median − lo), θ̂ + (hi − median)] from the percentile interval, clipped to ``bounds``."""
    values = np.asarray(values, dtype=float)
    pct = percentile_interval(values, level)
    if pct is None or not math.isfinite(point):
        return None
    median = float(np.median(values[np.isfinite(values)]))
    lo, hi = point - (median - pct[0]), point + (pct[1] - median)
    return [float(max(bounds[0], lo)), float(min(bounds[1], hi))]


# --------------------------------------------------------------------------- the cheap re-weightings


def gen_ppl_resamples(nll: np.ndarray, counts: np.ndarray, w: np.ndarray) -> np.ndarray:
    """exp(Σ w·nll / Σ w·count) per resample column of ``w`` (n, B)."""
    nll, counts = np.asarray(nll, dtype=np.float64), np.asarray(counts, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.exp((nll @ w) / (counts @ w))


def mean_resamples(values: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Σ w·v / Σ w per resample column (the resample's mean of a per-text value)."""
    values = np.asarray(values, dtype=np.float64)
    return (values @ w) / w.sum(0)


def mean_interval(values, resamples: int = 1000, seed: int = 0, level: float = CI_LEVEL) -> list[float] | None:
    """Percentile bootstrap interval of the mean of per-sample values."""
    values = np.asarray(values, dtype=np.float64)
    w = resample_counts(len(values), resamples, np.random.default_rng(seed))
    return percentile_interval(mean_resamples(values, w), level) if w.shape[1] else None


def ratio_resamples(num: np.ndarray, den: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Σ w·num / Σ w·den per resample column; nan where the resample has no denominator."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (num @ w) / (den @ w)


def train_ngram_set(train_texts: list[str], n: int = 4) -> set[tuple[str, ...]]:
    return {g for t in train_texts for g in ngrams(words(t), n)}


def memorisation_table(texts: list[str], train_grams: set[tuple[str, ...]], n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Per text: (its n-grams found in training, its n-grams), both with multiplicity."""
    hits, totals = [], []
    for t in texts:
        grams = ngrams(words(t), n)
        hits.append(sum(g in train_grams for g in grams))
        totals.append(len(grams))
    return np.array(hits, dtype=np.int64), np.array(totals, dtype=np.int64)


@dataclass
class DiversityTable:
    """Per-order tables from which div of any resample is a few matrix products.

    What a resample means for div: the drawn texts are pooled as if they were new
    samples. An n-gram that only one text of the sample contains (its own words)
    is new again in every copy of that text, as a fresh sample would bring its own
    new n-grams; an n-gram that two or more texts share is one unique n-gram
    however many of its texts were drawn (present iff one of them was drawn). Every
    copy adds all its n-grams to the total. Counting a drawn-twice text's own
    n-grams as repeats instead (the literal pooling of duplicates) measures the
    resampling's ties, not the sample's diversity: for 256 real sentences it puts
    every resample near 0.22 when div is 0.83. With this rule the resampled div's
    spread matched the spread of div over 40 independent sets of 256 held-out
    sentences (sd 0.0100 vs 0.0101); its median sits ≈ 0.7 sd below θ̂, hence the
    recentred interval (38 of those 40 intervals held the mean over the sets).
    With w = 1 everywhere it is exactly ``textdiff.eval.ngrams.diversity``.
    """

    shared: list[np.ndarray]   # per order: (G, n) 0/1, which texts hold each n-gram shared by ≥ 2 texts
    own: list[np.ndarray]      # per order: (n,) distinct n-grams only this text has
    total: list[np.ndarray]    # per order: (n,) n-grams of this text, with multiplicity

    @classmethod
    def build(cls, texts: list[str], orders: tuple[int, ...] = (2, 3, 4)) -> "DiversityTable":
        tokenised = [words(t) for t in texts]
        shared, own, total = [], [], []
        for n in orders:
            per_text = [set(ngrams(toks, n)) for toks in tokenised]
            holders: dict[tuple[str, ...], list[int]] = {}
            for i, grams in enumerate(per_text):
                for g in grams:
                    holders.setdefault(g, []).append(i)
            multi = [h for h in holders.values() if len(h) > 1]
            inc = np.zeros((len(multi), len(texts)), dtype=np.float32)
            for row, h in enumerate(multi):
                inc[row, h] = 1.0
            shared.append(inc)
            own.append(np.array([sum(len(holders[g]) == 1 for g in grams) for grams in per_text], dtype=np.float64))
            total.append(np.array([max(len(toks) - n + 1, 0) for toks in tokenised], dtype=np.float64))
        return cls(shared, own, total)

    def resamples(self, w: np.ndarray) -> np.ndarray:
        """div of each resample column of ``w`` (n, B); nan where a resample has no n-grams of some order."""
        drawn = (w > 0).astype(np.float32)
        score = np.ones(w.shape[1])
        with np.errstate(divide="ignore", invalid="ignore"):
            for inc, own, total in zip(self.shared, self.own, self.total):
                unique = ((inc @ drawn) > 0).sum(0) + own @ w
                score = score * unique / (total @ w)
        return score

    def point(self) -> float:
        return float(self.resamples(np.ones((len(self.own[0]), 1)))[0])


# --------------------------------------------------------------------------- MAUVE


def mauve_interval(p: np.ndarray, q: np.ndarray, resamples: int, *, scaling: float = 5.0, seed: int = 0,
                   point: float | None = None, level: float = CI_LEVEL) -> tuple[list[float] | None, np.ndarray]:
    """Recentred percentile interval of MAUVE over ``resamples`` bootstrap resamples of the feature rows.

    Each resample draws len(p) rows of ``p`` and len(q) rows of ``q`` with replacement
    (independently; the counts stay equal) and reruns mauve-text's compute (PCA,
    k-means with a fresh seed from the generator, so the quantisation's randomness is
    part of the spread). Duplicated rows lower MAUVE (real vs real, 256 a side: 0.97
    → median ≈ 0.84), so the interval is recentred on ``point`` (see the module doc).
    The interval is conservative: over 16 disjoint sets of 128 training sentences
    against the same 128 held-out ones, MAUVE's sd was 0.022 (real text) and 0.058
    (its words shuffled), the resamples' sd 0.085 and 0.113: 3.9× and 2.0× too wide,
    and all 16 intervals held the mean in both cases (``benchmarks/mauve_interval.py``,
    ``benchmarks/results/mauve_interval.json``).
    One compute on 256 vs 256 MiniLM features took ≈ 0.03 s on this CPU (512 vs 512:
    ≈ 0.07 s; 40 vs 40: ≈ 0.005 s). Returns (interval or None, the resampled values).
    """
    from textdiff.eval.mauve_score import mauve_from_features

    if point is None:
        point = mauve_from_features(p, q, scaling, seed)
    if resamples < 1:
        return None, np.zeros(0)
    rng = np.random.default_rng(seed)
    values = []
    with Progress(resamples, "mauve bootstrap", unit="resamples") as progress:
        for _ in range(resamples):
            i, j = rng.integers(0, len(p), len(p)), rng.integers(0, len(q), len(q))
            values.append(mauve_from_features(p[i], q[j], scaling, int(rng.integers(2**31 - 1))))
            progress.update(1)
    values = np.array(values)
    return recentred_interval(values, point, level, bounds=(0.0, 1.0)), values


# --------------------------------------------------------------------------- all of them


def sample_intervals(texts: list[str], nll: np.ndarray, counts: np.ndarray, entropies: np.ndarray, *,
                     train_grams: set[tuple[str, ...]] | None = None,
                     features: tuple[np.ndarray, np.ndarray] | None = None, mauve_point: float | None = None,
                     resamples: int = 1000, mauve_resamples: int = 200, seed: int = 0,
                     mauve_scaling: float = 5.0, level: float = CI_LEVEL) -> dict:
    """Every sample metric's interval from per-text arrays computed once.

    ``nll``, ``counts``, ``entropies``: the judge's per-text summed NLL, token count
    and unigram entropy (``textdiff.eval.judge.perplexity_scores``); ``train_grams``:
    the training split's 4-grams (``train_ngram_set``), mem_ci is left out without
    it; ``features``: (generated, reference) MiniLM rows for MAUVE, mauve_ci is left
    out without them. resamples = 0 (or mauve_resamples = 0) gives None intervals.
    """
    n = len(texts)
    if not (len(nll) == len(counts) == len(entropies) == n):
        raise ValueError(f"{n} texts but {len(nll)} nll, {len(counts)} counts, {len(entropies)} entropies")
    rng = np.random.default_rng(seed)
    w = resample_counts(n, resamples, rng)
    on = w.shape[1] > 0
    div_table = DiversityTable.build(texts)
    out = {
        "gen_ppl_ci": percentile_interval(gen_ppl_resamples(nll, counts, w), level) if on else None,
        "entropy_ci": percentile_interval(mean_resamples(entropies, w), level) if on else None,
        "div_ci": (recentred_interval(div_table.resamples(w), div_table.point(), level, bounds=(0.0, 1.0))
                   if on else None),
    }
    if train_grams is not None:
        hits, totals = memorisation_table(texts, train_grams)
        out["mem_ci"] = percentile_interval(ratio_resamples(hits, totals, w), level) if on and totals.sum() else None
    if features is not None:
        out["mauve_ci"], _ = mauve_interval(*features, mauve_resamples, scaling=mauve_scaling, seed=seed,
                                            point=mauve_point, level=level)
    out.update({"bootstrap_resamples": int(w.shape[1]), "mauve_bootstrap_resamples": int(mauve_resamples),
                "ci_level": level})
    return out
