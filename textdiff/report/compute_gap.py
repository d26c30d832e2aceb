"""Three claims that need learning curves, not one run: the compute masked diffusion needs to match the AR's
held-out likelihood (Nie et al., 2025: about 16×), the same for continuous embedding diffusion (Gulrajani &
Hashimoto, 2023, Plaid: about 64×), and data-constrained training (Prabhudesai et al., 2025: AR gains little past
about 4 epochs while masked diffusion keeps improving). Pure functions of the learning-curve points that
``benchmarks/compute_gap.py`` (``make curves``) runs; the report's verdict reads the summary it writes.

A point is one fresh training run of a row under a FLOP budget (its own warm-up and cosine schedule), scored on
held-out sentences: exact nats/token for the AR, the ELBO bound for masked diffusion. Because a bound can only
overstate the NLL, the compute the AR needs to match it can only be understated, so a factor measured from a
bound is an upper bound on the true factor: it can show "at most", never "at least".
"""

from __future__ import annotations

import hashlib
import json
import math

from textdiff.report.learned import curve_point_passes

CLAIM_TOLERANCE = 2.0  # "about 16×" is reproduced by a factor interval inside [16/2, 16·2]


def training_digest(p, row: str) -> str:
    """What a point's training read besides its budget: the row's resolved section (defaults merged), the data
    and tokenizer params and the seed. A point whose digest or data hash differs from the current ones was not
    run on these params or this data, and is left out."""
    picked = {"row": p.row(row).model_dump(mode="json"), "data": p.data.model_dump(mode="json"),
              "tokenizer": p.tokenizer.model_dump(mode="json"), "seed": p.seed}
    return hashlib.sha256(json.dumps(picked, sort_keys=True, default=str).encode()).hexdigest()[:16]


def curve(points: list[dict]) -> list[tuple[float, float, float]]:
    """(training FLOPs, held-out nats/token, its standard error) of each point, by FLOPs."""
    return sorted((q["train_flops"], q["heldout_nats"], q.get("heldout_nats_se") or 0.0) for q in points)


def compute_to_reach(points: list[tuple[float, float, float]], nats: float) -> tuple[float | None, str]:
    """The training FLOPs at which a curve first reaches ``nats``, by linear interpolation of nats in log FLOPs
    between the two points that straddle it: (FLOPs, "measured"); (the smallest budget, "below") when even the
    smallest run is already better (the true compute is at most that); (None, "beyond") when no run reached it."""
    if not points:
        return None, "beyond"
    if points[0][1] <= nats:
        return points[0][0], "below"
    for (c0, n0, _), (c1, n1, _) in zip(points, points[1:]):
        if n1 <= nats < n0:
            frac = (n0 - nats) / (n0 - n1)
            return math.exp(math.log(c0) + frac * (math.log(c1) - math.log(c0))), "measured"
    return None, "beyond"


def compute_factor(ar: list[dict], other: list[dict]) -> dict:
    """How many times the AR's compute the other row spent to reach its best held-out figure: its largest
    learned run's FLOPs over the AR compute that reaches the same nats, with the range from its ± 1.96 s.e."""
    learned = [q for q in other if passes(q)]
    if not learned:
        return {"factor": None, "why": "no run of the row passed its learned check"}
    best = max(learned, key=lambda q: q["train_flops"])
    ar_curve = curve(ar)
    at, how = compute_to_reach(ar_curve, best["heldout_nats"])
    se = best.get("heldout_nats_se") or 0.0
    lo_at, lo_how = compute_to_reach(ar_curve, best["heldout_nats"] + 1.96 * se)  # a worse figure: reached sooner
    hi_at, hi_how = compute_to_reach(ar_curve, best["heldout_nats"] - 1.96 * se)
    out = {"row_flops": best["train_flops"], "row_nats": best["heldout_nats"], "row_nats_se": se,
           "ar_flops": at, "how": how, "bound": "bound" in str(best.get("bound", ""))}
    if at is None:
        return {**out, "factor": None, "why": f"no AR run up to {ar_curve[-1][0]:.2g} FLOPs reached that figure "
                                              "(the AR curve does not get that good)" if ar_curve else "no AR run"}
    if how != "measured":
        return {**out, "factor": None, "why": f"the AR's smallest run ({at:.2g} FLOPs) is already better, so the "
                                              f"factor is only known to be at least {best['train_flops'] / at:.3g}×: "
                                              "run smaller AR budgets"}
    factor = best["train_flops"] / at
    # an end whose AR compute is not measured (below the smallest run, beyond the largest) is open: None
    return {**out, "factor": factor,
            "factor_range": [best["train_flops"] / hi_at if hi_how == "measured" else None,
                             best["train_flops"] / lo_at if lo_how == "measured" else None]}


def passes(point: dict) -> bool:
    """The run passed its learned check at the end of its budget (the last point of its in-run curve)."""
    pts = point.get("curve") or []
    return bool(pts) and curve_point_passes(pts[-1])


def data_constrained(ar: list[dict], masked: list[dict]) -> dict:
    """Held-out nats against epochs for both rows (each point a full run), what each gained over its last
    budget step, and the first budget at which masked diffusion's figure is below the AR's with the intervals
    apart (the crossover). "AR stops gaining past ≈ 4 epochs" is shown by the gains, not tested on its own."""
    def table(points):
        return [{"epochs": q["epochs"], "flops": q["train_flops"], "nats": q["heldout_nats"]}
                for q in sorted(points, key=lambda q: q["train_flops"])]

    ar_t, mask_t = table(ar), table(masked)
    by_budget = {q["budget_flops"]: q for q in ar}
    crossover = next((q["train_flops"] for q in sorted(masked, key=lambda q: q["train_flops"])
                      if q["budget_flops"] in by_budget and clearly_below(q, by_budget[q["budget_flops"]])), None)
    return {"autoregressive": ar_t, "masked": mask_t, "crossover_flops": crossover,
            "ar_last_gain": ar_t[-2]["nats"] - ar_t[-1]["nats"] if len(ar_t) > 1 else None,
            "masked_last_gain": mask_t[-2]["nats"] - mask_t[-1]["nats"] if len(mask_t) > 1 else None}


def clearly_below(a: dict, b: dict) -> bool:
    """a's held-out nats below b's with their 95% intervals apart (each ± 1.96 s.e.)."""
    return a["heldout_nats"] + 1.96 * (a.get("heldout_nats_se") or 0.0) < \
        b["heldout_nats"] - 1.96 * (b.get("heldout_nats_se") or 0.0)


def current_points(points: list[dict], row: str, data_sha256: str | None, digest: str) -> list[dict]:
    """The row's points run on this data and these params (no override), one per budget (the latest)."""
    kept = {}
    for q in points:
        if (q["row"] == row and not q.get("overridden", True) and q.get("data_sha256") == data_sha256
                and q.get("training_digest") == digest and q.get("heldout_nats") is not None):
            kept[q["budget_flops"]] = q
    return [kept[b] for b in sorted(kept)]


# --------------------------------------------------------------------------- the verdict's rows


def factor_verdict(result: dict, claimed: float) -> tuple[str, str]:
    """(outcome, numbers) for "the row needs about ``claimed``× the AR's compute": reproduced when the factor's
    interval lies inside [claimed/2, claimed·2], refuted when wholly outside. From a bound the factor is only an
    upper bound (the true one is at most this), so it can refute the claim from below and never reproduce it."""
    if result.get("factor") is None:
        return "inconclusive", result.get("why", "not measured")
    lo, hi = result["factor_range"]
    shown = (f"{result['factor']:.3g}× [{_end(lo)}, {_end(hi)}]: its run at {result['row_flops']:.2g} FLOPs "
             f"reached {result['row_nats']:.3f} nats/token, the AR's curve at {result['ar_flops']:.2g}")
    low, high = claimed / CLAIM_TOLERANCE, claimed * CLAIM_TOLERANCE
    if hi is not None and hi < low:
        return "refuted", shown + f"; the gap is smaller than {low:g}×" + (" (from a bound: at most this)"
                                                                           if result["bound"] else "")
    if result["bound"]:
        return "inconclusive", shown + (f"; from a bound, so the factor is at most {_end(hi)}×: consistent with "
                                        f"≈ {claimed:g}× but a bound cannot show it is not smaller")
    if lo is not None and hi is not None and low <= lo and hi <= high:
        return "reproduced", shown
    if lo is not None and lo > high:
        return "refuted", shown
    return "inconclusive", shown


def _end(value: float | None) -> str:
    return "open" if value is None else f"{value:.3g}"


def data_verdict(result: dict) -> tuple[str, str]:
    ar, masked = result["autoregressive"], result["masked"]
    if len(ar) < 2 or len(masked) < 2:
        return "inconclusive", "fewer than two budgets per row"
    shown = (f"AR {ar[-2]['nats']:.3f} → {ar[-1]['nats']:.3f} nats from {ar[-2]['epochs']:.1f} to "
             f"{ar[-1]['epochs']:.1f} epochs; masked {masked[-2]['nats']:.3f} → {masked[-1]['nats']:.3f} from "
             f"{masked[-2]['epochs']:.1f} to {masked[-1]['epochs']:.1f}")
    if result["crossover_flops"] is not None:
        return "reproduced", shown + f"; masked diffusion below the AR from {result['crossover_flops']:.2g} FLOPs"
    return "inconclusive", shown + f"; no crossover up to {ar[-1]['flops']:.2g} FLOPs ({ar[-1]['epochs']:.1f} AR epochs)"


def claim_rows(summary: dict | None, data_sha256: str | None, digests: dict[str, str]) -> list[dict]:
    """The three claims as verdict rows, each "not run on this data" unless ``summary`` (compute_gap.json) was
    computed from points on this run's data and these rows' params."""
    claims = [
        ("masked_compute_factor", "masked diffusion needs ≈ 16× the AR's compute to match its held-out likelihood",
         "Nie et al. (2025), Scaling up Masked Diffusion Models on Text", "≈ 16× (IsoFLOP analysis, up to 1e21 FLOPs)"),
        ("embedding_compute_factor", "continuous embedding diffusion needs ≈ 64× the AR's compute to match it",
         "Gulrajani & Hashimoto (2023), Plaid", "≈ 64× (Plaid 1B vs GPT-2 scaling laws)"),
        ("data_constrained", "with repeated data AR stops gaining past ≈ 4 epochs while masked diffusion keeps "
         "improving, crossing below it", "Prabhudesai et al. (2025), Diffusion Beats Autoregressive in "
         "Data-Constrained Settings", "crossover compute grows as unique data shrinks; AR saturates at ≈ 4 epochs"),
    ]
    stale = why_not_current(summary, data_sha256, digests)
    rows = []
    for cid, claim, source, paper in claims:
        if stale:
            rows.append({"id": cid, "claim": claim, "source": source, "paper": paper, "verdict": "inconclusive",
                         "evidence": [f"not run on this data: {stale}"]})
            continue
        result = summary["claims"][cid]
        if cid == "data_constrained":
            outcome, numbers = data_verdict(result)
        elif result.get("not_run"):
            outcome, numbers = "inconclusive", f"not run: {result['not_run']}"
        else:
            outcome, numbers = factor_verdict(result, 16.0 if cid == "masked_compute_factor" else 64.0)
        rows.append({"id": cid, "claim": claim, "source": source, "paper": paper, "verdict": outcome,
                     "evidence": [numbers, f"conditions: {summary['conditions']}"]})
    return rows


def why_not_current(summary: dict | None, data_sha256: str | None, digests: dict[str, str]) -> str | None:
    if summary is None:
        return "`make curves` has not been run (benchmarks/results/compute_gap.json is missing)"
    if summary.get("data_sha256") != data_sha256:
        return "benchmarks/results/compute_gap.json was computed on other data"
    changed = [row for row, digest in (summary.get("training_digests") or {}).items() if digests.get(row) != digest]
    if changed or not summary.get("training_digests"):
        return f"the params of {', '.join(f'`{r}`' for r in changed) or 'its rows'} changed since `make curves` ran"
    return None
