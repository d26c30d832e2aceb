"""Imported by the forkserver of pipelines.warm: the stage modules it names in TEXTDIFF_WARM_PRELOAD, and with
them torch, transformers and the package, so that each stage's child starts with them loaded. A module that
fails to import is skipped (its stage then imports it, and fails, in its own child), never fatal to the
forkserver."""

import importlib
import os

for _name in filter(None, os.environ.get("TEXTDIFF_WARM_PRELOAD", "").split(",")):
    try:
        importlib.import_module(_name)
    except BaseException:  # noqa: BLE001 (a SyntaxError or SystemExit in one stage module must not stop the rest)
        pass
