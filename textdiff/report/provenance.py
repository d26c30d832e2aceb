"""Which numbers belong to which run: an ablation collected on other data or other base params is not
comparable with this run's rows, so the report leaves it out."""

from __future__ import annotations

import hashlib
import json

SHARED_SECTIONS = ("seed", "data", "tokenizer", "judge", "evaluate")


def base_params_digest(raw_params: dict, row: str) -> str:
    """A digest of the params that an ablation of ``row`` holds fixed: the shared sections and the row's own
    section under ``rows`` and the ``defaults`` block merged under it, as ``params.yaml`` gives them (the
    experiments' overrides are applied on top of these)."""
    picked = {key: raw_params.get(key) for key in (*SHARED_SECTIONS, "defaults")}
    picked["row"] = (raw_params.get("rows") or {}).get(row)
    return hashlib.sha256(json.dumps(picked, sort_keys=True, default=str).encode()).hexdigest()[:16]


def comparable_groups(groups: dict[str, dict], data_sha256: str | None,
                      digest_of_row) -> tuple[dict[str, dict], dict[str, str]]:
    """Split ablation groups into those collected on this run's data and base params and the rest,
    with the reason each of the rest was left out."""
    kept, left_out = {}, {}
    for name, group in groups.items():
        if group.get("data_sha256") is None or group.get("base_params") is None:
            left_out[name] = "collected before provenance was recorded"
        elif group["data_sha256"] != data_sha256:
            left_out[name] = "collected on other data"
        elif group["base_params"] != digest_of_row(group["row"]):
            left_out[name] = f"collected with other base params for `{group['row']}`"
        else:
            kept[name] = group
    return kept, left_out
