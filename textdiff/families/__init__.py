"""Model families: each reads top to bottom in one module.

Every family module offers the same calls (textdiff/families/contract.py, the contract as code and checked
by a test), which the stages use: ``PARAMS``,
``build``, ``fit``, ``sample_texts`` and ``likelihood`` (loading goes through
textdiff.persist), and ``CANNOT_INFILL`` / ``CANNOT_GUIDE`` (None, or the reason the
family cannot), with ``draw_canvas(model, num, sample_params, *, generator, device,
infill=None, guide=None)`` for those that can: (num, L) token canvases with known
tokens held and/or guidance (textdiff.tasks, textdiff.sampling.guidance). ``fit`` and ``sample_texts`` take a
``RunContext`` (seed, device, checkpointing and the row's space as ``textdiff.spaces.registry`` loads it: cached
features and their decoder, or latents and their autoencoder); the token families' space is empty. A row of
the comparison (a section of ``rows`` in params.yaml, such as ``d3pm_absorb``) names its family in its ``family:`` key; one
family serves every row that differs only in params (the D3PM and SEDD graphs).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from textdiff.params import FAMILIES


def get_family(family: str) -> ModuleType:
    """The module textdiff/families/<family>.py (``sedd``; a row's section names it in ``family``)."""
    if family not in FAMILIES:
        raise KeyError(f"unknown model family {family!r}; the families are {', '.join(FAMILIES)}")
    return importlib.import_module(f"textdiff.families.{family}")


def canvas_drawer(family: ModuleType, model, sample_params, device):
    """``draw(num, generator, infill=None, guide=None)``: the family's ``draw_canvas`` bound to a model, its
    sample params and device (what textdiff.tasks calls)."""
    def draw(num: int, generator, infill=None, guide=None):
        return family.draw_canvas(model, num, sample_params, generator=generator, device=device, infill=infill,
                                  guide=guide)

    return draw
