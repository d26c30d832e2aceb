"""The rows of the comparison: the union of the families' row schemas, the defaults block merged under each, and
a row's trained components."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from textdiff.params import FAMILIES
from textdiff.params.ar import ARParams
from textdiff.params.base import Section
from textdiff.params.d3pm import D3PMParams
from textdiff.params.embedding import EmbeddingParams
from textdiff.params.encoder import DecoderParams, EncoderParams
from textdiff.params.latent import LatentParams, LatentSpaceParams
from textdiff.params.mdlm import MDLMParams
from textdiff.params.sedd import SEDDParams
from textdiff.params.shared import SampleCountParams, SharedModelParams, TrainParams
from textdiff.params.simplex import SimplexParams

RowParams = Annotated[
    ARParams | EmbeddingParams | MDLMParams | D3PMParams | SEDDParams | SimplexParams | EncoderParams | LatentParams,
    Field(discriminator="family")]
FAMILY_PARAMS = {cls.model_fields["family"].default: cls for cls in RowParams.__origin__.__args__}
if tuple(FAMILY_PARAMS) != FAMILIES:
    raise RuntimeError(f"textdiff.params.FAMILIES {FAMILIES} and the row schemas {tuple(FAMILY_PARAMS)} disagree")
RESERVED_ROW_NAMES = frozenset({"reference", "noise_floor", "judge"})  # the pipeline's own rows and stages
RowName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class DefaultsParams(Section):
    """What every row shares unless its own section says otherwise: merged under each row's ``model``,
    ``train`` and ``sample`` (the family's schema defaults < this block < the row's section)."""

    model: SharedModelParams = Field(default_factory=SharedModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    sample: SampleCountParams = Field(default_factory=SampleCountParams)


def train_components(section: Section) -> dict[str, TrainParams]:
    """A row's trained components by key path below the row, in the order they train: its autoencoder's
    ``space.train`` or its decoder's ``decoder.train`` where it has one, then ``train``."""
    parts = {}
    if isinstance(getattr(section, "space", None), LatentSpaceParams):
        parts["space.train"] = section.space.train
    if isinstance(getattr(section, "decoder", None), DecoderParams):
        parts["decoder.train"] = section.decoder.train
    parts["train"] = section.train
    return parts
