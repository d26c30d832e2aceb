"""The interval of a held-out likelihood: how much it would move with other held-out sentences, and, for a
Monte-Carlo bound, with other draws of t.

Per-token nats R = Σ_i nll_i / Σ_i n_i over the held-out sentences (nll_i the exact NLL or the bound's estimate
for sentence i, n_i its token count). Two sources of error:

- the data: the held-out sentences are one draw from the corpus. A bootstrap over sentences (resample n of the
  n with replacement, recompute the ratio of sums) gives its standard error se_data;
- the Monte-Carlo draws of t (``textdiff.eval.elbo.mc_standard_error``), zero for the AR's exact NLL.

The interval on the perplexity is exp(R ± z·se) with se = √(se_data² + se_mc²). Each nll_i of a bound already
carries its own draws' noise, independent from sentence to sentence, so the bootstrap sees all of the
Monte-Carlo error too and the sum counts it twice: the interval is a little wide (conservative), never narrow.
Rows scored on the same sentences share the data error; comparisons that treat two rows' intervals as
independent (textdiff.report.verdict) are conservative for the same reason. The percentile interval of the bootstrap
alone is kept beside it (``heldout_ppl_ci_data``) for a reader who wants the data's share.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from textdiff.eval.intervals import CI_LEVEL, percentile_interval, ratio_resamples, resample_counts

RESAMPLES = 1000


def sentence_bootstrap_se(nll: np.ndarray, tokens: np.ndarray, resamples: int = RESAMPLES,
                          seed: int = 0) -> tuple[float | None, list[float] | None]:
    """(standard error of Σ nll / Σ tokens over bootstrap resamples of the sentences, the percentile interval
    of the resampled ratio); (None, None) with fewer than two sentences."""
    nll, tokens = np.asarray(nll, dtype=np.float64), np.asarray(tokens, dtype=np.float64)
    if len(nll) != len(tokens):
        raise ValueError(f"{len(nll)} per-sentence NLLs but {len(tokens)} token counts")
    if len(nll) < 2 or resamples < 2:
        return None, None
    values = ratio_resamples(nll, tokens, resample_counts(len(nll), resamples, np.random.default_rng(seed)))
    values = values[np.isfinite(values)]
    return float(values.std(ddof=1)), percentile_interval(values)


def ppl_interval(nats_per_token: float, se: float | None, level: float = CI_LEVEL) -> list[float] | None:
    """[exp(nats − z·se), exp(nats + z·se)], z the normal quantile of ``level`` (1.96 for 0.95)."""
    if se is None:
        return None
    z = NormalDist().inv_cdf((1 + level) / 2)
    return [math.exp(nats_per_token - z * se), math.exp(nats_per_token + z * se)]


def heldout_interval(nll: np.ndarray, tokens: np.ndarray, mc_se: float | None, *, resamples: int = RESAMPLES,
                     seed: int = 0, level: float = CI_LEVEL) -> dict:
    """The held-out figures' errors and the perplexity's interval, as the likelihood stage records them."""
    nats = float(np.sum(nll) / np.sum(tokens))
    se_data, data_ci = sentence_bootstrap_se(nll, tokens, resamples, seed)
    parts = [s for s in (se_data, mc_se) if s is not None]
    se = math.sqrt(sum(s * s for s in parts)) if parts else None
    return {
        "heldout_nats_per_token_se": se,
        "heldout_nats_per_token_se_data": se_data,
        "heldout_nats_per_token_se_mc": mc_se,
        "heldout_ppl_ci": ppl_interval(nats, se, level),
        "heldout_ppl_ci_data": [math.exp(v) for v in data_ci] if data_ci else None,
        "heldout_ppl_ci_kind": (f"{level:.0%} normal interval on nats/token: "
                                + (f"bootstrap over {len(nll)} held-out sentences ({resamples} resamples)"
                                   if se_data is not None else "no bootstrap (under two sentences)")
                                + (" combined with the Monte-Carlo error over t" if mc_se else "")),
    }
