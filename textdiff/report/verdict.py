"""The report's verdict: a ranking that only calls a row ahead when the intervals separate, and the papers'
claims checked against this run's numbers. Pure functions of metrics dicts; the claims are data
(``claims.yaml`` beside this module)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist, stdev

import yaml
from scipy.stats import t as student_t

from textdiff.report.learned import describe, likelihood_checks

CLAIMS_FILE = Path(__file__).with_name("claims.yaml")
LOWER_IS_BETTER = {"gen_ppl", "heldout_ppl", "mem", "rounding_error"}
Z95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True)
class Estimate:
    point: float
    lo: float
    hi: float
    bound: bool = False  # an upper bound (an ELBO perplexity), not the figure itself

    def below(self, other: "Estimate") -> bool:
        """The whole interval lies below the other's."""
        return self.hi < other.lo

    def overlaps(self, other: "Estimate") -> bool:
        return not (self.below(other) or other.below(self))


def estimate(metrics: dict, key: str) -> Estimate | None:
    """The metric with its 95% interval (``KEY_ci``); a figure without one is its own interval."""
    value = metrics.get(key)
    if value is None or value != value:  # missing or nan
        return None
    lo, hi = metrics.get(f"{key}_ci") or (value, value)
    kind = metrics.get(f"{key}_bound")
    return Estimate(float(value), float(lo), float(hi), bound=bool(kind) and "bound" in str(kind))


# --------------------------------------------------------------------------- seed variance


def seed_spread(ablations: dict[str, dict], row: str, metric: str) -> list[float]:
    """The row's metric in every run of its training-seed group (``seeds: true`` in ablations.yaml; the
    baseline is the default seed), or [] when no such group was collected on this data and params."""
    for group in ablations.values():
        if group.get("seeds") and group.get("row") == row:
            values = [r.get(metric) for r in group["rows"] if not r.get("degenerate")]
            return [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return []


def seed_half_width(values: list[float], level: float = 0.95) -> float | None:
    """Half-width of the interval one run's figure has over training seeds: t_{(1+level)/2, n−1}·sd of the n
    seeds' figures (Student's t: with 3 seeds the sd is itself uncertain, t = 4.30). None below two seeds."""
    if len(values) < 2:
        return None
    return float(student_t.ppf((1 + level) / 2, len(values) - 1)) * stdev(values)


def with_seed_variance(rows: dict[str, dict], ablations: dict[str, dict],
                       metrics: tuple[str, ...] = ("heldout_ppl", "mauve", "gen_ppl")) -> dict[str, dict]:
    """Each row's metrics with the wider of its own interval and its seed interval (point ± ``seed_half_width``)
    as ``KEY_ci``; ``KEY_seeds`` says how many seeds widened it. Rows without a seed group keep their intervals."""
    out = {}
    for name, m in rows.items():
        m = dict(m)
        for key in metrics:
            values = seed_spread(ablations, name, key)
            half = seed_half_width(values)
            est = estimate(m, key)
            if half is None or est is None:
                continue
            lo, hi = max(0.0, min(est.lo, est.point - half)), max(est.hi, est.point + half)
            hi = min(hi, 1.0) if key == "mauve" else hi
            m[f"{key}_ci"], m[f"{key}_seeds"] = [lo, hi], len(values)
        out[name] = m
    return out


def load_claims(path: Path = CLAIMS_FILE) -> list[dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- ranking


def not_learned(metrics: dict) -> str | None:
    """Why a row cannot be evidence for a claim (its learned check failed, textdiff.report.learned), or None."""
    check = metrics.get("learned_check")
    if check is None or check["learned"]:
        return None
    return ("no signal, " if check["no_signal"] else "") + check["deciding"]


def likelihood_not_learned(metrics: dict) -> str | None:
    """Why a row's held-out likelihood cannot be evidence: a failed likelihood check (the margin over the
    positional unigram, the context probe), or None. Without a learned check, as ``not_learned``."""
    if metrics.get("learned_check") is None:
        return None
    failed = [c for c in likelihood_checks(metrics) if not c["passed"]]
    return describe(failed[0]) if failed else None


def rank_tiers(rows: dict[str, dict], metric: str = "mauve") -> list[list[str]]:
    """Rows in tiers, best first: a row starts a new tier only when its interval lies wholly on the worse side
    of the interval of every row in the tier above. Degenerate rows, rows that have not learned and rows without
    the metric are left out."""
    sign = -1 if metric in LOWER_IS_BETTER else 1
    scored = sorted(((name, estimate(m, metric)) for name, m in rows.items()
                     if not m.get("degenerate") and not not_learned(m) and estimate(m, metric) is not None),
                    key=lambda item: -sign * item[1].point)
    tiers: list[list[tuple[str, Estimate]]] = []
    for name, est in scored:
        if tiers and not all(_worse(est, other, sign) for _, other in tiers[-1]):
            tiers[-1].append((name, est))
        else:
            tiers.append([(name, est)])
    return [[name for name, _ in tier] for tier in tiers]


def _worse(a: Estimate, b: Estimate, sign: int) -> bool:
    """a is separated from b on the worse side."""
    return a.below(b) if sign > 0 else b.below(a)


# --------------------------------------------------------------------------- claims


def check(spec: dict, rows: dict[str, dict], ablations: dict[str, dict]) -> tuple[str, str]:
    """One check of a claim: (outcome, the numbers behind it)."""
    metric, relation = spec["metric"], spec["relation"]
    source = rows
    where = ""
    if "group" in spec:
        group = ablations.get(spec["group"])
        if group is None:
            return "inconclusive", f"ablation group `{spec['group']}` not run on this data and params"
        source = {r["name"]: r for r in group["rows"]}
        where = f" ({spec['group']})"
    ea, missing = _evidence(source, spec["a"], metric, where)
    if missing:
        return "inconclusive", missing
    if relation == "at_least":
        outcome = "reproduced" if ea.point >= spec["value"] else "refuted"
        return outcome, f"`{spec['a']}` {metric} {ea.point:.3g} (claim: ≥ {spec['value']:g})"
    eb, missing = _evidence(source, spec["b"], metric, where)
    if missing:
        return "inconclusive", missing
    numbers = f"`{spec['a']}` {_show(ea)} vs `{spec['b']}` {_show(eb)} ({metric}{where})"
    seeded = [f"`{n}` {source[n][f'{metric}_seeds']}" for n in (spec["a"], spec["b"])
              if source[n].get(f"{metric}_seeds")]
    if seeded:
        numbers += f" (intervals widened to the spread over training seeds: {', '.join(seeded)} seeds)"
    if relation == "about":
        return equivalence(ea, eb, spec.get("tolerance", 0.1), numbers)
    a_better = ea.below(eb) if relation == "lower" else eb.below(ea)
    b_better = eb.below(ea) if relation == "lower" else ea.below(eb)
    if ea.bound != eb.bound and (a_better or b_better):
        above = eb if ea.below(eb) else ea  # the row whose interval lies higher
        if above.bound:  # its true figure may lie anywhere below its bound
            return "inconclusive", numbers + "; the upper bound lies above the exact figure, which does not order them"
    elif ea.bound and eb.bound:
        numbers += " (two upper bounds, compared as bounds, as the papers do)"
    if b_better and metric == "heldout_ppl" and "group" not in spec:
        earlier = order_at_an_earlier_budget(source[spec["a"]], source[spec["b"]])
        if earlier is None:
            return "inconclusive", numbers + "; refuting needs the order at a second budget: no learning curve"
        if earlier != "b":
            return "inconclusive", numbers + "; the order differs at half the budget (learning curves)"
        numbers += "; the same order at half the budget"
    return ("reproduced" if a_better else "refuted" if b_better else "inconclusive"), numbers


def ratio_interval(a: Estimate, b: Estimate) -> tuple[float, float] | None:
    """95% interval of a/b: on the log scale, each side's standard error read off its own interval
    ((ln hi − ln lo)/(2·1.96)) and the two combined as independent; None where an interval reaches 0."""
    if min(a.lo, b.lo, a.point, b.point) <= 0:
        return None
    se = math.hypot(math.log(a.hi / a.lo), math.log(b.hi / b.lo)) / (2 * Z95)
    centre = math.log(a.point / b.point)
    return math.exp(centre - Z95 * se), math.exp(centre + Z95 * se)


def equivalence(a: Estimate, b: Estimate, tolerance: float, numbers: str) -> tuple[str, str]:
    """"a about equal to b" as an equivalence test: reproduced when the 95% interval of a/b lies inside
    1 ± ``tolerance``, refuted when it lies wholly outside, inconclusive otherwise (a wide interval, or none,
    cannot show equality). An upper bound can show only "no worse than": a bound whose ratio interval lies inside
    1 ± tolerance shows the bounded row no worse than the other by more than the tolerance (as the papers show
    it); one wholly below 1 − tolerance refutes, since the true figure is lower still."""
    if a.lo == a.hi or b.lo == b.hi:
        return "inconclusive", numbers + "; a figure without an interval cannot be shown equal to another"
    ratio = ratio_interval(a, b)
    if ratio is None:
        return "inconclusive", numbers + "; an interval reaches 0, so their ratio has none"
    lo, hi = ratio
    shown = f"; ratio {a.point / b.point:.3g} [{lo:.3g}, {hi:.3g}] against 1 ± {tolerance:g}"
    if a.bound and b.bound:
        return "inconclusive", numbers + shown + "; two upper bounds cannot show two rows equal"
    if a.bound or b.bound:
        bounded_hi = hi if a.bound else 1 / lo  # the bounded row over the other
        bounded_lo = lo if a.bound else 1 / hi
        if bounded_hi < 1 - tolerance:  # the bounded row is better by more than the tolerance
            return "refuted", numbers + shown
        if bounded_hi <= 1 + tolerance and bounded_lo >= 1 - tolerance:
            return "reproduced", numbers + shown + ("; as a bound: within the tolerance and no worse than it, "
                                                    "the way the paper shows it (a bound cannot show equality)")
        return "inconclusive", numbers + shown + ("; the bound is above, which an upper bound cannot refute"
                                                  if bounded_lo > 1 + tolerance else "")
    if 1 - tolerance <= lo and hi <= 1 + tolerance:
        return "reproduced", numbers + shown
    if hi < 1 - tolerance or lo > 1 + tolerance:
        return "refuted", numbers + shown
    return "inconclusive", numbers + shown


def order_at_an_earlier_budget(a: dict, b: dict) -> str | None:
    """Which row ("a" or "b") had the lower held-out nats at the learning-curve point before the last (half the
    budget by default), or None when either row lacks one."""
    def earlier(row):
        pts = sorted(row.get("learning_curve") or [], key=lambda q: q["flops"])
        return pts[-2]["heldout_nats"] if len(pts) >= 2 else None

    na, nb = earlier(a), earlier(b)
    if na is None or nb is None:
        return None
    return "a" if na < nb else "b"


SAMPLE_FREE = {"heldout_ppl"}  # figures of the model, not of its samples


def _evidence(source: dict[str, dict], name: str, metric: str, where: str) -> tuple[Estimate | None, str]:
    """The row's (or run's) estimate, or why it cannot be evidence. A held-out likelihood does not depend on
    the samples: for it only the likelihood's own learned checks count, degenerate samples do not."""
    row = source.get(name)
    if row is None:
        return None, f"`{name}` not measured{where}"
    if metric in SAMPLE_FREE:
        why = likelihood_not_learned(row)
    elif row.get("degenerate"):
        return None, f"`{name}` is degenerate"
    else:
        why = not_learned(row)
    if why:
        return None, f"`{name}` has not learned ({why})"
    est = estimate(row, metric)
    return (est, "") if est is not None else (None, f"`{name}` has no {metric}")


def judge_claim(claim: dict, rows: dict[str, dict], ablations: dict[str, dict]) -> dict:
    results = [check(spec, rows, ablations) for spec in claim["checks"]]
    outcomes = [o for o, _ in results]
    verdict = ("reproduced" if all(o == "reproduced" for o in outcomes)
               else "refuted" if "refuted" in outcomes else "inconclusive")
    evidence = [n for _, n in results] + ([f"conditions: {claim['conditions']}"] if claim.get("conditions") else [])
    return {"id": claim["id"], "claim": claim["claim"], "source": claim["source"], "paper": claim.get("paper", ""),
            "verdict": verdict, "evidence": evidence}


def _show(e: Estimate) -> str:
    if e.lo == e.hi:
        return f"{e.point:.3g}"
    return f"{e.point:.3g} [{e.lo:.3g}, {e.hi:.3g}]"


# --------------------------------------------------------------------------- markdown


def verdict_section(rows: dict[str, dict], ablations: dict[str, dict], claims: list[dict],
                    metric: str = "mauve", judged: list[dict] = ()) -> str:
    """The ranking and the claims table; ``judged``: claims already judged elsewhere (the learning-curve claims
    of textdiff.report.compute_gap), as ``judge_claim`` returns them."""
    rows = with_seed_variance(rows, ablations)
    tiers = rank_tiers(rows, metric)
    degenerate = [n for n, m in rows.items() if m.get("degenerate")]
    lines = [f"**Ranking by {metric.upper() if metric == 'mauve' else metric}** (95% bootstrap intervals, widened "
             "to the spread over training seeds where the `training_seeds` ablation group was run; a row is ahead "
             "of another only when their intervals separate; rows in one tier are not told apart):", ""]
    for i, tier in enumerate(tiers, 1):
        shown = ", ".join(f"`{n}` {_show(estimate(rows[n], metric))}" for n in tier)
        lines.append(f"{i}. {shown}")
    if not tiers:
        lines.append("(no row has a usable figure)")
    if degenerate:
        lines += ["", "Not ranked, degenerate output: " + "; ".join(
            f"`{n}` ({', '.join(rows[n].get('degenerate_reasons') or ['degenerate'])})" for n in degenerate) + "."]
    unlearned = [n for n, m in rows.items() if not_learned(m) and n not in degenerate]
    if unlearned:
        lines += ["", "Not ranked, has not learned: " + "; ".join(f"`{n}` ({not_learned(rows[n])})"
                                                                 for n in unlearned) + "."]
    seeded = sorted(g["row"] for g in ablations.values() if g.get("seeds"))
    lines += ["", (f"Training-seed spread measured for {', '.join(f'`{m}`' for m in seeded)} (ablation group "
                   "`training_seeds`): their intervals below are the wider of the run's own and the seeds'."
                   if seeded else "Training-seed spread not measured: the intervals are this run's (data and "
                   "Monte-Carlo) only; `python -m pipelines.ablate --only training_seeds` measures it "
                   "(three seeds, a whole default run each).")]
    lines += ["", "| claim | source | verdict | this run | paper |", "|---|---|---|---|---|"]
    for j in [judge_claim(claim, rows, ablations) for claim in claims] + list(judged):
        lines.append(f"| {j['claim']} | {j['source']} | **{j['verdict']}** | {'; '.join(j['evidence'])} | "
                     f"{j['paper']} |")
    return "\n".join(lines)
