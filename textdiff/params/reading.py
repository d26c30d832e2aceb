"""The parts of params.yaml one stage reads, each checked by its own schema module: a stage that reads its row
and the run's settings imports the schemas of its row's family, ``run`` and nothing else, so DVC re-runs it for
an edit to those only (stage validate has checked the whole file against textdiff.config.Params first)."""

from __future__ import annotations

import importlib
from pathlib import Path

from textdiff.params import FAMILIES
from textdiff.params.base import ParamsError, Section, check_section, read_params_file, resolve_row
from textdiff.params.run import RunParams


class StageParams:
    """The parts of one params file a stage reads: the run's settings as attributes (``seed``, ``device``,
    ``train_processes``, ``budget``, ``tracking``), each top-level section named at construction
    (``StageParams(path, evaluate=EvaluateParams)`` gives ``.evaluate``) and ``row(name)``."""

    def __init__(self, path: str | Path = "params.yaml", **sections: type[Section]):
        self.path = Path(path)
        self.raw = read_params_file(self.path)
        run = check_section(RunParams, {k: self.raw[k] for k in RunParams.model_fields if k in self.raw},
                            str(self.path) + ":")
        for key in RunParams.model_fields:
            setattr(self, key, getattr(run, key))
        for key, schema in sections.items():
            setattr(self, key, check_section(schema, self.raw.get(key), f"{self.path}: {key}"))

    def row(self, name: str) -> Section:
        """One row's section with the defaults block merged under it, checked by its family's row schema."""
        rows = self.raw.get("rows")
        if not isinstance(rows, dict) or name not in rows:
            known = ", ".join(rows) if isinstance(rows, dict) else "none"
            raise ParamsError(f"row {name!r} is not in params 'rows' ({known})")
        resolved = resolve_row(rows[name], self.raw.get("defaults") or {})
        family = resolved.get("family") if isinstance(resolved, dict) else None
        if family not in FAMILIES:
            raise ParamsError(f"{self.path}: rows.{name}.family is {family!r}; the families are {', '.join(FAMILIES)}")
        schema = importlib.import_module(f"textdiff.params.{family}").ROW
        return check_section(schema, resolved, f"{self.path}: rows.{name}")
