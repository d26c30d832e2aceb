"""Orchestration over the DVC stages: Prefect flows, deployments and ablation sweeps.

Importing the package makes the environment every entry point needs, so that
``.venv/bin/python -m pipelines.flow`` works as written: no Prefect analytics
look-ups (the machines may have no network), hub libraries offline. The tools
it calls (``dvc``, ``prefect``) run through this interpreter (``tool(...)``),
never through a PATH look-up, so an unactivated venv works too.
"""

from __future__ import annotations

import os
import sys

for _key, _value in {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "HF_HUB_OFFLINE": "1",
                     "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(_key, _value)


def tool(name: str, *args: str) -> list[str]:
    """The command line for a Python tool installed beside this interpreter (``dvc``, ``prefect``)."""
    return [sys.executable, "-m", name, *args]


def tool_env() -> dict[str, str]:
    """The environment for those tools: this interpreter's bin folder first on PATH, because DVC's experiment
    queue (its celery workers) starts ``dvc exp exec-run`` by name from PATH."""
    bin_dir = os.path.dirname(sys.executable)
    return {**os.environ, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}
