"""Model families: each reads top to bottom in one module.

Every family module offers the same four calls, which the stages use:
``fit``, ``sample_texts``, ``likelihood`` and ``load`` (via textdiff.persist).
"""

from __future__ import annotations

import importlib
from types import ModuleType

FAMILY_MODULES = {"ar": "textdiff.families.ar", "embedding": "textdiff.families.embedding",
                  "mdlm": "textdiff.families.mdlm"}


def get_family(name: str) -> ModuleType:
    if name not in FAMILY_MODULES:
        raise KeyError(f"unknown model family {name!r}; known: {sorted(FAMILY_MODULES)}")
    return importlib.import_module(FAMILY_MODULES[name])
