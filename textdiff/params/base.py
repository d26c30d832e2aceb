"""What every params module builds on: the Section base class, the error type, YAML reading that names the file
and line, and the defaults merge (pure dict functions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from textdiff.errors import InputError

SHARED_PARTS = ("model", "train", "sample")  # the parts of a row the defaults block is merged under


class ParamsError(InputError):
    """Invalid params: the message names the file, the key path and the problem."""


def deep_merge(base: dict, over: dict) -> dict:
    """``base`` with ``over`` written on top, mapping by mapping."""
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def resolve_row(raw: Any, defaults: dict) -> Any:
    """One row's raw section with the (written) defaults block under its model, train and sample; the family's
    schema defaults fill the rest (Section). Anything malformed is returned as is, for the schema to name."""
    if not isinstance(raw, dict):
        return raw
    shared = {part: deep_merge(written, raw[part]) if isinstance(raw.get(part), dict) else raw.get(part, written)
              for part, written in defaults.items() if part in SHARED_PARTS and isinstance(written, dict)}
    return {**raw, **shared}


class Section(BaseModel):
    """Base of every params section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _written_over_defaults(cls, raw: Any) -> Any:
        """A part written in part keeps its schema default for the rest: ``decoder: {train: {steps: 20}}``
        keeps the decoder's own learning rate and budget share, not those of a bare TrainParams."""
        if not isinstance(raw, dict):
            return raw
        out = dict(raw)
        for name, field in cls.model_fields.items():
            if isinstance(raw.get(name), dict) and field.default_factory is not None:
                default = field.default_factory()
                if isinstance(default, BaseModel):
                    out[name] = deep_merge(default.model_dump(mode="json"), raw[name])
        return out


def check_section(schema: type[Section], raw: Any, where: str) -> Section:
    """``raw`` checked by ``schema``; a ParamsError naming each bad key under ``where`` (stage validate has checked
    the whole file first, so a stage that reads only its sections meets this only when run by hand)."""
    try:
        return schema.model_validate({} if raw is None else raw)
    except ValidationError as err:
        keys = "; ".join(f"{'.'.join(str(p) for p in (where, *e['loc']))}: {e['msg']}" for e in err.errors())
        raise ParamsError(f"invalid params: {keys}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ParamsError(f"line {key_node.start_mark.line + 1}: key {key!r} is given twice in one mapping "
                                  f"(first at line {seen[key]}); keep one")
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """The YAML at ``path``; a ParamsError naming the file and line for bad YAML or a repeated key."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except ParamsError as err:
        raise ParamsError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from None
    except UnicodeDecodeError as err:
        raise ParamsError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def read_params_file(path: str | Path) -> dict:
    """The raw mapping of a params file; a ParamsError naming the file when it is missing, empty or not a mapping."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"params file not found: {path}")
    raw = read_yaml(path)
    if raw is None:
        raise ParamsError(f"{path} is empty: it must name at least the rows to train ('rows'); "
                          f"see the params.yaml of the repository")
    if not isinstance(raw, dict):
        raise ParamsError(f"invalid params in {path}: expected a mapping at the top level")
    return raw
