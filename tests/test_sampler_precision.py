"""Every discrete sampler draws its random numbers in float64 (Zheng et al., 2024: float32 uniforms truncate the
Gumbel tail, which lowers the effective temperature and flatters gen_ppl). A torch function mode records every
random draw made while a row's sampler runs: the uniforms that pick tokens must be float64, and nothing may draw
through ``torch.multinomial`` or ``bernoulli``, which draw in the probabilities' own precision."""

import pytest
import torch
from torch.overrides import TorchFunctionMode

from tests.reference_rows import row_family
from tests.test_family_roundtrip import tiny_section
from textdiff.data.vocab import Vocab
from textdiff.families.contract import RunContext

UNIFORM_DRAWS = {"rand", "rand_like", "uniform_", "exponential_", "geometric_"}
LOW_PRECISION_DRAWS = {"multinomial", "bernoulli", "bernoulli_", "poisson"}
GAUSSIAN_DRAWS = {"randn", "randn_like", "normal", "normal_"}  # the simplex's starting noise: continuous, not a pick


class DrawRecorder(TorchFunctionMode):
    """Records (function name, dtype of what it drew) for every random draw made under it."""

    def __init__(self):
        super().__init__()
        self.draws: list[tuple[str, torch.dtype]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if name in UNIFORM_DRAWS | LOW_PRECISION_DRAWS | GAUSSIAN_DRAWS:
            self.draws.append((name, out.dtype if name not in LOW_PRECISION_DRAWS else args[0].dtype))
        return out

    def token_picks(self) -> list[tuple[str, torch.dtype]]:
        return [d for d in self.draws if d[0] not in GAUSSIAN_DRAWS]


def draws_of(sampler) -> DrawRecorder:
    with DrawRecorder() as recorder:
        sampler()
    return recorder


def test_the_recorder_catches_a_float32_draw_and_a_multinomial():
    """The check below can fail: a sampler that draws a float32 uniform or calls multinomial is seen."""
    gen = torch.Generator().manual_seed(0)
    rec = draws_of(lambda: (torch.rand(4, generator=gen), torch.multinomial(torch.ones(2, 5), 1, generator=gen),
                            torch.rand(3, generator=gen, dtype=torch.float64)))
    assert rec.token_picks() == [("rand", torch.float32), ("multinomial", torch.float32), ("rand", torch.float64)]


SAMPLE_VARIANTS = [("ar", {}), ("ar", {"top_p": 0.9}), ("mdlm", {}), ("mdlm", {"use_cache": False}),
                   ("d3pm_absorb", {}), ("d3pm_uniform", {}), ("sedd_absorb", {"method": "tweedie"}),
                   ("sedd_absorb", {"method": "euler"}), ("sedd_uniform", {"method": "tweedie"}),
                   ("sedd_uniform", {"method": "euler"}), ("simplex", {"top_p": 1.0}), ("simplex", {"top_p": 0.9})]


@pytest.mark.parametrize("row,sample", SAMPLE_VARIANTS,
                         ids=[f"{r}-{'-'.join(f'{k}={v}' for k, v in s.items()) or 'default'}"
                              for r, s in SAMPLE_VARIANTS])
def test_every_discrete_sampler_draws_in_float64(row, sample, small_tokenizer):
    section = tiny_section(row)
    settable = {k: v for k, v in sample.items() if k != "use_cache"}
    assert set(settable) <= set(type(section.sample).model_fields), f"{row}'s sample params lack {settable}"
    section = section.model_copy(update={"sample": section.sample.model_copy(update=settable)})
    family = row_family(row)
    torch.manual_seed(0)
    model = family.build(section, Vocab.from_tokenizer(small_tokenizer)).eval()
    if "use_cache" in sample:  # not a sample param: the uncached loop is reached through generate
        rec = draws_of(lambda: family.generate(model, 2, section.sample.steps, torch.Generator().manual_seed(0),
                                               torch.device("cpu"), use_cache=sample["use_cache"]))
    else:
        rec = draws_of(lambda: family.sample_texts(model, small_tokenizer, section.sample, RunContext()))
    picks = rec.token_picks()
    assert picks, f"{row} drew no random numbers: the recorder missed its sampler"
    assert all(dtype == torch.float64 and name in UNIFORM_DRAWS for name, dtype in picks), picks
