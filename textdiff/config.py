"""The one typed params schema, assembled from its owners' modules (textdiff/params/).

``params.yaml`` is loaded through :func:`load_params`. An unknown key, a wrong
type or an impossible value raises :class:`ParamsError` whose message names the
dotted key path (``ar.train.steps``) and what was expected, before any stage
touches its outputs. Stage validate checks the whole file here; a stage that reads
only its row and the run's settings reads them through textdiff.params.reading, so it
does not depend on this module (nor on the schemas of sections it never reads).
The section classes are importable from here too (``from textdiff.config import TrainParams``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from textdiff.params import FAMILIES
from textdiff.params.ar import ARParams, ARSampleParams  # noqa: F401  (re-exported: the whole schema in one place)
from textdiff.params.base import (SHARED_PARTS, ParamsError, Section, deep_merge, read_params_file,  # noqa: F401
                                  read_yaml, resolve_row)
from textdiff.params.d3pm import D3PMModelParams, D3PMParams  # noqa: F401
from textdiff.params.data import CORPUS_DIR, DataParams, FeaturesParams, TokenizerParams, corpus_files_outside  # noqa: F401
from textdiff.params.embedding import EmbeddingModelParams, EmbeddingParams, GaussianSampleParams  # noqa: F401
from textdiff.params.encoder import (DecoderParams, EncoderModelParams, EncoderParams,  # noqa: F401
                                     EncoderSpaceParams)
from textdiff.params.evaluation import EvaluateParams, JudgeParams
from textdiff.params.latent import (CompressorParams, LatentModelParams, LatentParams,  # noqa: F401
                                    LatentSampleParams, LatentSpaceParams, ReconstructionParams)
from textdiff.params.mdlm import MaskedModelParams, MaskedSampleParams, MDLMParams  # noqa: F401
from textdiff.params.orchestration import OrchestrationParams
from textdiff.params.report import ReportParams
from textdiff.params.rows import (FAMILY_PARAMS, RESERVED_ROW_NAMES, DefaultsParams, RowName,  # noqa: F401
                                  RowParams, train_components)
from textdiff.params.run import BudgetParams, RunParams  # noqa: F401
from textdiff.params.sedd import SEDDModelParams, SEDDParams, SEDDSampleParams  # noqa: F401
from textdiff.params.shared import (BackboneParams, ContinuousSampleParams, DecoderModelParams,  # noqa: F401
                                    DiffusionParams, DiscreteSampleParams, SampleCountParams, SharedModelParams,
                                    TrainParams)
from textdiff.params.simplex import (SimplexDiffusionParams, SimplexModelParams, SimplexParams,  # noqa: F401
                                     SimplexSampleParams)
from textdiff.params.tasks import ControlParams, GuideClassifierParams, InfillParams, StepsSweepParams
from textdiff.params.tracking import TrackingParams  # noqa: F401


class Params(RunParams):
    """The whole of params.yaml: the run's settings (textdiff.params.run), the rows and every stage's section."""

    defaults: DefaultsParams = Field(default_factory=DefaultsParams)
    rows: dict[RowName, RowParams] = Field(
        default_factory=lambda: {"ar": ARParams()}, min_length=1,
        description="the rows of the comparison: each a section naming its family (textdiff/families/<family>.py) "
                    "and what differs from the defaults block")
    data: DataParams = Field(default_factory=DataParams)
    tokenizer: TokenizerParams = Field(default_factory=TokenizerParams)
    features: FeaturesParams = Field(default_factory=FeaturesParams)
    steps_sweep: StepsSweepParams = Field(default_factory=StepsSweepParams)
    judge: JudgeParams = Field(default_factory=JudgeParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    infill: InfillParams = Field(default_factory=InfillParams)
    control: ControlParams = Field(default_factory=ControlParams)
    report: ReportParams = Field(default_factory=ReportParams)
    orchestration: OrchestrationParams = Field(default_factory=OrchestrationParams)

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, raw: Any) -> Any:
        """Every row's section with the defaults block merged under it (a bad default is then named once, at
        ``defaults``: _format_errors drops its copies under the rows)."""
        if not isinstance(raw, dict):
            return raw
        if "rows" not in raw:  # the schema's default rows take the defaults block too
            raw = {**raw, "rows": {"ar": {"family": "ar"}}}
        if not isinstance(raw["rows"], dict):
            return raw
        defaults = raw.get("defaults", {})
        if not isinstance(defaults, dict):
            return raw
        return {**raw, "rows": {name: resolve_row(row, defaults) for name, row in raw["rows"].items()}}

    @model_validator(mode="after")
    def _row_names_free(self) -> "Params":
        """A row's files are named after it beside the pipeline's own rows (metrics/eval/reference.json,
        samples/noise_floor.jsonl): those names cannot be rows."""
        for name in self.rows:
            if name in RESERVED_ROW_NAMES:
                raise ValueError(f"rows.{name}: {name!r} is a name the pipeline uses for its own rows and stages "
                                 f"({', '.join(sorted(RESERVED_ROW_NAMES))}); rename the row")
        return self

    @model_validator(mode="after")
    def _corpus_files_tracked(self) -> "Params":
        if (why := corpus_files_outside(self.data)) is not None:
            raise ValueError(why)
        return self

    @model_validator(mode="after")
    def _batches_split_across_processes(self) -> "Params":
        """Each rank trains on an equal slice of a row's global batch (textdiff/training/distributed.py)."""
        for row, section in self.rows.items():
            batch = section.train.batch_size
            if batch % self.train_processes:
                raise ValueError(f"rows.{row}.train.batch_size ({batch}) must be divisible by train_processes "
                                 f"({self.train_processes}): each process trains on an equal slice of the batch")
        return self

    @model_validator(mode="after")
    def _budget_shares(self) -> "Params":
        """Each row's component shares sum to 1; under a budget an enabled row of several components names
        every share (a single component's null share means 1)."""
        for row, section in self.rows.items():
            parts = train_components(section)
            shares = {f"rows.{row}.{path}.budget_share": cfg.budget_share for path, cfg in parts.items()}
            if len(shares) == 1:
                key, share = next(iter(shares.items()))
                if share is not None and abs(share - 1) > 1e-6:
                    raise ValueError(f"{key} is {share}: the shares of one row's components must sum to 1, "
                                     f"and {row} trains one component (leave it null, which means 1)")
                continue
            unset = [k for k, v in shares.items() if v is None]
            needed = self.budget.train_flops is not None
            if unset and (needed or len(unset) < len(shares)):
                raise ValueError(f"{', '.join(unset)} not set: {row} trains {len(shares)} components "
                                 f"({', '.join(shares)}); give each its share of budget.train_flops, summing to 1")
            if not unset and abs(sum(shares.values()) - 1) > 1e-6:
                raise ValueError(" + ".join(f"{k} ({v})" for k, v in shares.items())
                                 + f" = {sum(shares.values()):.6g}: the shares of one row's components must sum to 1")
        return self

    def row(self, name: str) -> RowParams:
        """The resolved params section of one row (the defaults block merged under it)."""
        if name not in self.rows:
            raise ParamsError(f"row {name!r} is not in params 'rows' ({', '.join(self.rows)})")
        return self.rows[name]

    @property
    def row_families(self) -> dict[str, str]:
        """Each row -> its family, from the rows' ``family:`` keys."""
        return {name: section.family for name, section in self.rows.items()}

    @property
    def models(self) -> dict[str, str]:
        """Deprecated spelling of ``row_families`` (a row was called a model before)."""
        import warnings

        warnings.warn("Params.models is deprecated: use Params.row_families (each row -> its family)",
                      DeprecationWarning, stacklevel=2)
        return self.row_families

    def rows_of(self, *families: str) -> list[str]:
        return [name for name, section in self.rows.items() if section.family in families]

    @property
    def swept_rows(self) -> list[str]:
        """The rows the steps sweep covers: every row of a family in ``steps_sweep.families``."""
        return self.rows_of(*self.steps_sweep.families)


def _error_path(loc: tuple) -> str:
    """The dotted key path of a schema error, without the family tag pydantic puts after a row's name."""
    parts = list(loc)
    if len(parts) >= 3 and parts[0] == "rows" and parts[2] in FAMILY_PARAMS | {"[key]": None}:
        del parts[2]
    return ".".join(str(p) for p in parts) or "(top level)"


def _error_message(e: dict) -> str:
    known = ", ".join(FAMILIES)
    if e["type"] == "extra_forbidden":
        return "unknown key (check the spelling; see textdiff/config.py for the schema)"
    if e["type"] == "union_tag_not_found":
        return f"no `family:` key: a row names its family, one of {known}"
    if e["type"] == "string_pattern_mismatch" and e["loc"][:1] == ("rows",) and "[key]" in e["loc"]:
        return "a row's name is lowercase letters, digits and _, starting with a letter (it names the row's " \
               "folders and DVC stages)"
    if e["type"] == "union_tag_invalid":
        return f"family {e['ctx']['tag']!r} is not a family; the families are {known}"
    return e["msg"]


def _inherited(e: dict, from_defaults: set) -> bool:
    """A row's copy of an error the defaults block already has (rows.ROW.PART... = defaults.PART...)."""
    loc = e["loc"]
    return loc[:1] == ("rows",) and len(loc) > 3 and loc[2] in FAMILY_PARAMS and (loc[3:], e["msg"]) in from_defaults


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid params in {source}:"]
    errors = err.errors()
    from_defaults = {(tuple(e["loc"][1:]), e["msg"]) for e in errors if e["loc"][:1] == ("defaults",)}
    for e in errors:
        if _inherited(e, from_defaults):
            continue
        got = e.get("input")
        quiet = e["type"] in ("extra_forbidden", "union_tag_not_found", "union_tag_invalid") or isinstance(got, dict)
        lines.append(f"  {_error_path(e['loc'])}: {_error_message(e)}{'' if quiet else f' (got {got!r})'}")
    return "\n".join(lines)


OLD_LAYOUT = ("a top-level `models:` mapping and one section per row is the layout before the `defaults` block: "
              "move each row's section under `rows:`, add `family: FAMILY` to it, keep only what differs from "
              "`defaults`, and drop `models`, `space_decoders` and `steps_sweep.models` (see the repository's "
              "params.yaml)")


def parse_params(raw: dict[str, Any], source: str = "params") -> Params:
    if not isinstance(raw, dict):
        raise ParamsError(f"invalid params in {source}: expected a mapping at the top level")
    if "models" in raw and "rows" not in raw:
        raise ParamsError(f"invalid params in {source}: {OLD_LAYOUT}")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_format_errors(err, source)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    return parse_params(read_params_file(path), str(path))
