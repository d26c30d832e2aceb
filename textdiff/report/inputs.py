"""Everything the report reads, gathered from one run's files into plain dicts: the only module of the report
that touches the disk. Every table and sentence is then a pure function of a ``RunMetrics``, so that the
report can be built (and tested) from metrics alone.

The layout is the pipeline's, relative to ``root``: metrics/STAGE/ROW.json, samples/ROW.jsonl,
data/prepared/*.jsonl and reports/ablations.json.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from textdiff.io import read_json, read_jsonl

REFERENCE_ROW = "real text (held-out)"  # the held-out text, scored as a row beside the trained rows
NOISE_FLOOR_ROW = "noise floor (positional unigram)"  # text drawn position by position, scored as a row


@dataclass
class RunMetrics:
    """One run's metrics, keyed by row. A stage that has not run leaves its row out of its dict."""

    rows: list[dict]  # the reference and noise-floor rows first, then each row with eval metrics (train,
    # likelihood, sample merged)
    stats: dict  # data/prepared/stats.json: corpus, hashes, splits
    judge: dict | None = None
    canvas_counts: dict | None = None  # the training texts' token-length histogram (metrics/tokenizer.json)
    train: dict[str, dict] = field(default_factory=dict)
    sample: dict[str, dict] = field(default_factory=dict)
    compute: dict[str, dict] = field(default_factory=dict)  # textdiff.training.flops.row_compute per row
    spaces: dict[str, dict] = field(default_factory=dict)
    decoders: dict[str, dict] = field(default_factory=dict)
    autoencoders: dict[str, dict] = field(default_factory=dict)
    sweeps: dict[str, dict] = field(default_factory=dict)
    sweep_records: dict[str, list[dict]] = field(default_factory=dict)
    loss_curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    learning_curves: dict[str, list[dict]] = field(default_factory=dict)  # metrics/train/ROW.json learning_curve
    texts: dict[str, list[str]] = field(default_factory=dict)  # REFERENCE_ROW (valid split) and each row's samples
    test_texts: list[str] = field(default_factory=list)
    infill: dict[str, dict] = field(default_factory=dict)
    infill_examples: dict[str, list[dict]] = field(default_factory=dict)
    control: dict[str, dict] = field(default_factory=dict)
    guide_classifier: dict = field(default_factory=dict)
    control_judge: dict = field(default_factory=dict)
    ablation_groups: dict[str, dict] = field(default_factory=dict)  # reports/ablations.json, before provenance checks

    def by_name(self) -> dict[str, dict]:
        return {r["row"]: r for r in self.rows}

    @property
    def noise_floor(self) -> dict | None:
        return self.by_name().get(NOISE_FLOOR_ROW)


def load_run(root: str | Path, row_names: list[str], swept_rows: list[str]) -> RunMetrics:
    """Read every metrics file of ``row_names`` (the run's rows) under ``root``."""
    root = Path(root)
    metrics, samples, prepared = root / "metrics", root / "samples", root / "data" / "prepared"

    def per_row(stage: str, names=row_names) -> dict[str, dict]:
        paths = {m: metrics / stage / f"{m}.json" for m in names}
        return {m: read_json(path) for m, path in paths.items() if path.exists()}

    from textdiff.training.flops import row_compute

    infill = per_row("infill")
    run = RunMetrics(
        rows=eval_rows(metrics, row_names), stats=read_json(prepared / "stats.json"),
        judge=optional_json(metrics / "judge.json"),
        canvas_counts=(optional_json(metrics / "tokenizer.json") or {}).get("canvas_lengths", {}).get("counts"),
        train=per_row("train"), sample=per_row("sample"),
        compute={m: row_compute(metrics, m) for m in row_names},
        spaces=per_row("space"), decoders=per_row("decoder"), autoencoders=per_row("autoencoder"),
        sweeps=per_row("sweep", swept_rows), loss_curves=loss_curves(metrics, row_names),
        infill=infill, control=per_row("control"),
        guide_classifier=optional_json(metrics / "guide_classifier.json") or {},
        control_judge=optional_json(metrics / "control_judge.json") or {},
        ablation_groups=ablation_groups(optional_json(root / "reports" / "ablations.json") or {}),
    )
    run.learning_curves = {m: t["learning_curve"] for m, t in run.train.items() if t.get("learning_curve")}
    run.sweep_records = {m: read_jsonl(samples / "sweep" / f"{m}.jsonl") for m in run.sweeps}
    run.infill_examples = {m: read_jsonl(samples / "infill" / f"{m}.jsonl")[:1] for m, record in infill.items()
                           if record.get("supported") and (samples / "infill" / f"{m}.jsonl").exists()}
    sources = ([(REFERENCE_ROW, prepared / "valid.jsonl"), (NOISE_FLOOR_ROW, samples / "noise_floor.jsonl")]
               + [(m, samples / f"{m}.jsonl") for m in row_names])
    run.texts = {name: [r["text"] for r in read_jsonl(path)] for name, path in sources if path.exists()}
    if run.autoencoders and (prepared / "test.jsonl").exists():
        run.test_texts = [r["text"] for r in read_jsonl(prepared / "test.jsonl")]
    return run


def optional_json(path: Path) -> dict | None:
    return read_json(path) if path.exists() else None


def eval_rows(metrics: Path, row_names: list[str]) -> list[dict]:
    """The reference and noise-floor rows, then one dict per evaluated row: its eval metrics with its train and
    likelihood metrics and the sample stage's figures merged in."""
    rows = []
    for label, stem in ((REFERENCE_ROW, "reference"), (NOISE_FLOOR_ROW, "noise_floor")):
        path = metrics / "eval" / f"{stem}.json"
        if path.exists():
            rows.append({**read_json(path), "row": label})
    for name in row_names:
        path = metrics / "eval" / f"{name}.json"
        if not path.exists():
            continue
        merged = read_json(path)
        for extra in (metrics / "train" / f"{name}.json", metrics / "likelihood" / f"{name}.json"):
            if extra.exists():
                merged.update(read_json(extra))
        sample = metrics / "sample" / f"{name}.json"
        merged.update(sample_figures(read_json(sample)) if sample.exists() else {})
        sweep = metrics / "sweep" / f"{name}.json"
        merged.update({k: v for k, v in (read_json(sweep) if sweep.exists() else {}).items()
                       if k.startswith(("cache_", "cached_", "uncached_"))})  # the cache timed at the paper's T
        rows.append({**merged, "row": name})
    return rows


def sample_figures(sample: dict) -> dict:
    """What the report reads from a sample stage's metrics (its `steps` is the sampler's, not training's)."""
    out = {k: sample[k] for k in ("nfe", "rounding_error", "rounding_error_ci") if k in sample}
    calls = sample.get("nfe")
    if sample.get("steps") and calls:
        out["cache_speedup"] = sample["steps"] / calls  # > 1 only where the sampler skips network calls
    return out


def loss_curves(metrics: Path, row_names: list[str]) -> dict[str, list[tuple[int, float]]]:
    """Each row's recorded training loss (metrics/train/ROW_loss.csv) as (step, loss) pairs."""
    curves = {}
    for name in row_names:
        path = metrics / "train" / f"{name}_loss.csv"
        if path.exists():
            with open(path) as f:
                curves[name] = [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]
    return curves


def ablation_groups(collected: dict) -> dict[str, dict]:
    """reports/ablations.json's groups, each naming its row under ``row`` (a file collected before the rename
    names it under ``model``)."""
    return {name: {**group, "row": group.get("row", group.get("model"))} for name, group in collected.items()}
