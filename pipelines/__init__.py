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
from collections.abc import Iterator
from contextlib import contextmanager

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


@contextmanager
def prefect_api(startup_timeout_s: int) -> Iterator[None]:
    """Give Prefect's temporary (ephemeral) API server ``startup_timeout_s`` to answer (Prefect's own 20 s, counted
    in sleeps between polls, ran out after 39 s of wall on a 2-core machine at load 4.5); if it still does not,
    exit with one line that says what to do instead of Prefect's traceback."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

    try:
        with temporary_settings({PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: startup_timeout_s}):
            yield
    except RuntimeError as err:
        if "ephemeral Prefect API server" not in str(err) or PREFECT_API_URL.value():
            raise
        raise SystemExit(
            f"Prefect's temporary API server did not answer within {startup_timeout_s} s "
            f"(orchestration.server_startup_timeout_s; a busy machine starts it slowly). Raise that param, or start "
            f"a server once (.venv/bin/prefect server start) and point the flow at it: "
            f"export PREFECT_API_URL=http://127.0.0.1:4200/api") from None
