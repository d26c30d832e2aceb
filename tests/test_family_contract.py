"""Every family module satisfies the contract (textdiff/families/contract.py), keyword by keyword."""

import inspect

import pytest

from textdiff.config import FAMILIES, FAMILY_PARAMS
from textdiff.families import get_family
from textdiff.families.contract import LIKELIHOOD_KEYWORDS, Family, RunContext, can_draw_canvas


def accepts(fn, keywords) -> list[str]:
    """The keywords ``fn`` would refuse (it takes each by name, or has **kwargs)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return []
    return [k for k in keywords if k not in params]


def positional(fn) -> list[str]:
    """The names of the parameters ``fn`` takes by position (every call passes these four so)."""
    return [n for n, p in inspect.signature(fn).parameters.items()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_offers_the_contract(name):
    family = get_family(name)
    assert isinstance(family, Family), name
    assert family.PARAMS is FAMILY_PARAMS[name]
    assert positional(family.fit) == ["params", "tokenizer", "train_texts", "run"], name
    assert positional(family.sample_texts) == ["model", "tokenizer", "params", "run"], name
    assert accepts(family.likelihood, LIKELIHOOD_KEYWORDS) == []
    for reason in (family.CANNOT_INFILL, family.CANNOT_GUIDE):
        assert reason is None or (isinstance(reason, str) and len(reason) > 20)
    assert hasattr(family, "draw_canvas") == can_draw_canvas(family), name
    assert family.LIKELIHOOD_FOOTING in ("canvas", "tokens", None)
    assert (family.context_probe is None) == (family.LIKELIHOOD_FOOTING is None), name


def test_the_check_refuses_a_module_without_the_calls():
    import types

    bare = types.ModuleType("bare")
    bare.PARAMS, bare.CANNOT_INFILL, bare.CANNOT_GUIDE = object, None, None
    assert not isinstance(bare, Family)
    assert accepts(lambda model, *, seed: None, LIKELIHOOD_KEYWORDS) == ["device", "batch_size", "draws"]
    assert positional(lambda model, tokenizer, params, *, seed, device: None) == ["model", "tokenizer", "params"]


def test_the_run_context_gives_the_training_loop_its_options():
    import torch

    run = RunContext(seed=3, device=torch.device("cpu"), fingerprint="f", budget_flops=1e9, stop_after=2)
    assert run.loop_options() == {"checkpoint_dir": None, "fingerprint": "f", "device": torch.device("cpu"),
                                  "log": None, "progress": True, "stop_after": 2, "budget_flops": 1e9,
                                  "curve_probe": None, "curve_at": (0.125, 0.25, 0.5, 1.0)}
    assert run.space.kind == "tokens"
