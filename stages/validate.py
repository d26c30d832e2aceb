"""validate: check every params value before any other stage runs.

DVC deletes a stage's outputs just before it runs the stage's command, so a typo
found inside the stage would cost its last good outputs. Every stage sits
downstream of this one (prepare depends on its output), so `dvc repro` stops here
with the bad key named and nothing deleted. data/params_valid.json is constant,
so a valid change of params re-runs this stage without invalidating anything
else by itself. data/params/ROW.yaml is each row's resolved section (the
defaults block merged under it, every key filled in): the row stages read their
DVC params from it, so they re-run exactly when a value they use changes.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from stages.all_params import params
from stages.common import dump, say, stage_main
from textdiff.device import resolve_device
from textdiff.io import write_json, write_text

OUT = Path("data/params_valid.json")
ROWS = Path("data/params")  # ROW.yaml per row


@stage_main("validate")
def main() -> None:
    p = params()
    resolve_device(p.device)  # device: cuda on a machine without CUDA is a params error too
    write_json(OUT, {"params.yaml": "valid"})
    write_resolved_rows(p)
    say("validate", f"params.yaml is valid ({len(p.rows)} rows: {', '.join(p.rows)})")


def write_resolved_rows(p) -> None:
    """data/params/ROW.yaml for every row (rewritten only where it changed); files of rows no longer in
    params.yaml are removed."""
    ROWS.mkdir(parents=True, exist_ok=True)
    for name, section in p.rows.items():
        resolved = {"decoder": None, **dump(section)}  # every row has a decoder stage, which reads `decoder`
        text = f"# rows.{name} of params.yaml, resolved (written by stage validate; do not edit)\n" \
               + yaml.safe_dump(resolved, sort_keys=False)
        path = ROWS / f"{name}.yaml"
        if not path.exists() or path.read_text() != text:
            write_text(path, text)
    for stale in ROWS.glob("*.yaml"):
        if stale.stem not in p.rows:
            stale.unlink()


if __name__ == "__main__":
    main()
