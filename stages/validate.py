"""validate: check every params value before any other stage runs.

DVC deletes a stage's outputs just before it runs the stage's command, so a typo
found inside the stage would cost its last good outputs. Every stage sits
downstream of this one (prepare depends on its output), so `dvc repro` stops here
with the bad key named and nothing deleted. The output's content is constant:
a valid change of params re-runs this stage without invalidating anything else.
"""

from __future__ import annotations

from pathlib import Path

from stages.common import params, say, stage_main
from textdiff.device import resolve_device
from textdiff.io import write_json

OUT = Path("data/params_valid.json")


@stage_main("validate")
def main() -> None:
    p = params()
    resolve_device(p.device)  # device: cuda on a machine without CUDA is a params error too
    write_json(OUT, {"params.yaml": "valid"})
    say("validate", f"params.yaml is valid ({len(p.models)} rows)")


if __name__ == "__main__":
    main()
