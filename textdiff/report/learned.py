"""Has a row learned? The checks every row must pass before a claim may compare it (DESIGN §9).

A row has learned when it does better than what ignores context, by the measures its family admits:

- a row with a token likelihood (``context_blind_margin`` in its likelihood metrics: the positional
  unigram's nats per token minus the row's, on the row's own footing, textdiff.eval.context_blind)
  beats the context-blind bar by ``MARGIN[graph]`` nats per token, and its context probe
  (textdiff.eval.context_probe) moves by ``PROBE_MIN[probe]`` nats;
- a latent row's autoencoder reconstructs held-out sentences (greedy token accuracy ≥ 0.6);
- an encoder row's decoder reads clean encodings (token accuracy at t = 0 ≥ 0.9);
- every row's samples are told apart from the noise floor (text drawn from the positional unigram):
  neither its gen_ppl nor its MAUVE interval overlaps the floor's ("no signal" otherwise), and they are
  not degenerate.

Pure functions of metrics dicts: the report and the stages call ``learned_check`` on what they read.
"""

from __future__ import annotations

MARGIN = {"causal": 1.0, "absorbing": 0.5, "uniform": 0.25}  # nats/token below the positional unigram
PROBE_MIN = {"masked_nll_by_share": 1.5, "partner_swap": 0.5}  # nats
# The AR row's prefix swap is reported, not a gate: its exact likelihood against the best context-blind model on
# the same tokens already measures its use of context, and the swap leaves the second half's own local context in
# place (it measures long-range use only: 0.20 nats for the default AR row that is 1.27 nats below the bar).
INFORMATIONAL_PROBES = {"prefix_swap"}
AUTOENCODER_ACCURACY = 0.6  # held-out greedy token accuracy of a latent row's autoencoder
DECODER_ACCURACY = 0.9  # held-out token accuracy of an encoder row's decoder at t = 0
PROBE_WORDS = {"masked_nll_by_share": "masked NLL drop, 5% vs 100% masked",
               "partner_swap": "NLL rise when the context is another sentence's",
               "prefix_swap": "NLL rise after another sentence's first half"}


def check(name: str, value: float | None, threshold: float, unit: str = "") -> dict:
    """One check: passed when ``value`` ≥ ``threshold``; a missing value fails (it cannot show learning)."""
    return {"check": name, "value": value, "threshold": threshold, "unit": unit,
            "passed": value is not None and value == value and value >= threshold}


def likelihood_checks(likelihood: dict) -> list[dict]:
    """The margin over the context-blind bar and the context probe, for a row whose likelihood metrics carry
    them (``context_blind_margin``, ``context_probe``)."""
    graph = (likelihood.get("context_probe") or {}).get("graph")
    if "context_blind_margin" not in likelihood or graph not in MARGIN:
        return []
    probe = likelihood["context_probe"]
    margin = check("nats/token below the positional unigram", likelihood["context_blind_margin"], MARGIN[graph],
                   "nats")
    if probe["probe"] in INFORMATIONAL_PROBES:
        return [margin, {"check": PROBE_WORDS[probe["probe"]], "value": probe.get("value"), "threshold": None,
                         "unit": "nats", "passed": True, "informational": True}]
    return [margin, check(PROBE_WORDS[probe["probe"]], probe.get("value"), PROBE_MIN[probe["probe"]], "nats")]


def autoencoder_checks(autoencoder: dict | None) -> list[dict]:
    """A latent row's autoencoder (its stage writes ``held_out``; rows without one write only why not)."""
    if not autoencoder or "held_out" not in autoencoder:
        return []
    return [check("autoencoder held-out token accuracy", (autoencoder.get("held_out") or {}).get("token_accuracy"),
                  AUTOENCODER_ACCURACY)]


def decoder_checks(decoder: dict | None) -> list[dict]:
    """An encoder row's decoder (its stage writes ``held_out``; rows without one write only why not)."""
    if not decoder or "held_out" not in decoder:
        return []
    at_zero = next((r for r in decoder.get("held_out", []) if r.get("t") == 0.0), {})
    return [check("decoder token accuracy at t = 0", at_zero.get("token_accuracy"), DECODER_ACCURACY)]


def _interval(metrics: dict, key: str) -> tuple[float, float] | None:
    value = metrics.get(key)
    if value is None or value != value:
        return None
    lo, hi = metrics.get(f"{key}_ci") or (value, value)
    return float(lo), float(hi)


BETTER = {"gen_ppl": "lower", "mauve": "higher"}


def clear_of_floor(row: dict, floor: dict, key: str) -> bool | None:
    """Whether the row's 95% interval of ``key`` lies wholly on the better side of the noise floor's (below it for
    gen_ppl, above it for MAUVE); None when either lacks the figure."""
    a, b = _interval(row, key), _interval(floor, key)
    if a is None or b is None:
        return None
    return a[1] < b[0] if BETTER[key] == "lower" else a[0] > b[1]


def signal_checks(row: dict, floor: dict | None) -> list[dict]:
    """Samples against the noise floor: gen_ppl and MAUVE intervals clear of the floor's, output not degenerate."""
    out = [{"check": "samples not degenerate", "value": None, "threshold": None, "unit": "",
            "passed": not row.get("degenerate")}]
    if floor is None:
        return out + [{"check": "samples against the noise floor", "value": None, "threshold": None, "unit": "",
                       "passed": False, "why": "the noise floor was not scored"}]
    for key in ("gen_ppl", "mauve"):
        out.append({"check": f"{key} interval clear of the noise floor's", "value": row.get(key),
                    "threshold": floor.get(key), "unit": "", "passed": bool(clear_of_floor(row, floor, key))})
    return out


def learned_check(row: dict, floor: dict | None, autoencoder: dict | None = None,
                  decoder: dict | None = None) -> dict:
    """{"learned": bool, "no_signal": bool, "checks": [...], "deciding": str} for one row.

    ``row``: its eval metrics with its likelihood metrics merged (as the report reads them); ``floor``: the
    noise-floor row's eval metrics. ``no_signal``: the samples are not told apart from the floor's. ``deciding``
    names the failed check with its number (a floor check first when there is no signal), or the tightest passed
    one (the smallest value-to-threshold ratio) when every check passed."""
    checks = (likelihood_checks(row) + autoencoder_checks(autoencoder) + decoder_checks(decoder)
              + signal_checks(row, floor))
    floor_failed = [c for c in checks if not c["passed"] and "noise floor" in c["check"]]
    failed = floor_failed + [c for c in checks if not c["passed"] and c not in floor_failed]
    return {"learned": not failed, "no_signal": bool(floor_failed), "checks": checks,
            "deciding": describe(failed[0] if failed else tightest(checks))}


def tightest(checks: list[dict]) -> dict:
    numeric = [c for c in checks if c["threshold"] and c["value"] is not None and "floor" not in c["check"]]
    if not numeric:
        return next((c for c in checks if "floor" in c["check"]), checks[0])
    return min(numeric, key=lambda c: c["value"] / c["threshold"])


def describe(c: dict) -> str:
    """One check in words with its number: 'masked NLL drop, 5% vs 100% masked 1.73 ≥ 1.5 nats'."""
    if c.get("why"):
        return f"{c['check']}: {c['why']}"
    if c.get("informational"):
        return f"{c['check']} {c['value']:.3g} {c['unit']} (reported, not a gate)"
    if c["threshold"] is None:
        return c["check"] + ("" if c["passed"] else ": no")
    if "floor" in c["check"]:
        value = "–" if c["value"] is None else f"{c['value']:.3g}"
        floor = "–" if c["threshold"] is None else f"{c['threshold']:.3g}"
        key = c["check"].split(" interval")[0]
        side = "below" if BETTER[key] == "lower" else "above"
        return f"{key} {value} vs floor {floor}" + ("" if c["passed"] else f" (interval not wholly {side} the floor's)")
    value = "–" if c["value"] is None else f"{c['value']:.4g}"
    return f"{c['check']} {value} {'≥' if c['passed'] else '<'} {c['threshold']:g}" + (
        f" {c['unit']}" if c["unit"] else "")


def curve_point_passes(point: dict) -> bool:
    """A learning-curve point (textdiff.eval.learning_evidence.curve_probe) clears its row's likelihood thresholds
    (the margin, and the probe where it is a gate)."""
    probe_ok = point["probe"] in INFORMATIONAL_PROBES or point["probe_value"] >= PROBE_MIN[point["probe"]]
    return point["context_blind_margin"] >= MARGIN[point["graph"]] and probe_ok


def first_passed(points: list[dict]) -> float | None:
    """The training FLOPs of the first curve point from which on every point passes; None if the last fails."""
    first = None
    for point in sorted(points, key=lambda q: q["flops"]):
        if curve_point_passes(point):
            first = point["flops"] if first is None else first
        else:
            first = None
    return first
