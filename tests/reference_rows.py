"""The twelve rows of the repository's params.yaml, for tests that exercise one row's family by its row name."""

from pathlib import Path

from textdiff.config import load_params
from textdiff.families import get_family

REPO_PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")


def row_family(row: str):
    """The family module of a row of params.yaml (``d3pm_absorb`` -> textdiff.families.d3pm)."""
    return get_family(REPO_PARAMS.row(row).family)
