"""Every family module satisfies the contract (textdiff/families/contract.py), keyword by keyword."""

import inspect

import pytest

from textdiff.config import FAMILIES, FAMILY_PARAMS
from textdiff.families import get_family
from textdiff.families.contract import (FIT_KEYWORDS, LIKELIHOOD_KEYWORDS, SAMPLE_KEYWORDS, Family,
                                        can_draw_canvas)


def accepts(fn, keywords) -> list[str]:
    """The keywords ``fn`` would refuse (it takes each by name, or has **kwargs)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return []
    return [k for k in keywords if k not in params]


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_offers_the_contract(name):
    family = get_family(name)
    assert isinstance(family, Family), name
    assert family.PARAMS is FAMILY_PARAMS[name]
    assert accepts(family.fit, FIT_KEYWORDS) == []
    assert accepts(family.sample_texts, SAMPLE_KEYWORDS) == []
    assert accepts(family.likelihood, LIKELIHOOD_KEYWORDS) == []
    for reason in (family.CANNOT_INFILL, family.CANNOT_GUIDE):
        assert reason is None or (isinstance(reason, str) and len(reason) > 20)
    assert hasattr(family, "draw_canvas") == can_draw_canvas(family), name


def test_the_check_refuses_a_module_without_the_calls():
    import types

    bare = types.ModuleType("bare")
    bare.PARAMS, bare.CANNOT_INFILL, bare.CANNOT_GUIDE = object, None, None
    assert not isinstance(bare, Family)
    assert accepts(lambda model, *, seed: None, SAMPLE_KEYWORDS) == ["device", "space_dir"]
