"""The whole params schema (textdiff.config.Params), for the stages that read across rows and sections
(validate, evaluate, report): they depend on every schema module. A stage that reads its row and a few sections
takes stages.common.stage_params instead."""

from __future__ import annotations

from stages.common import PARAMS_FILE
from textdiff.config import Params, load_params


def params() -> Params:
    return load_params(PARAMS_FILE)
