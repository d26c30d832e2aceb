"""Where a row's diffusion space lives on disk, and how it is read back: ``load(kind, folder)``.

A row's space folder (``spaces/ROW``) holds what the space and autoencoder/decoder stages wrote: ``data/``
(the cached features or latents), ``decoder/`` (encoder rows) and ``autoencoder/`` (latent rows). The stages
load a space here and hand it to the family; the families never open a file. Each kind says what it caches and
what decodes its states; ``kind_of`` maps a row's ``space`` params to its kind, so no caller type-switches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from textdiff.params.encoder import EncoderSpaceParams
from textdiff.params.latent import LatentSpaceParams


def kind_of(space_params) -> str:
    """``tokens`` (the project tokenizer's ids), ``features`` (frozen MiniLM features) or ``latent``."""
    if isinstance(space_params, LatentSpaceParams):
        return "latent"
    if isinstance(space_params, EncoderSpaceParams):
        return "features"
    if space_params == "tokens":
        return "tokens"
    raise ValueError(f"unknown space params {space_params!r}; known kinds: {sorted(KINDS)}")


@dataclass
class StoredSpace:
    """A space whose stages wrote files under ``folder`` (spaces/ROW); each part is read once, when first asked for."""

    folder: Path | None = None
    kind = "tokens"
    trains_autoencoder = False
    trains_decoder = False
    _cache: dict = field(default_factory=dict, repr=False)

    def read(self, part: str, load):
        """``load(folder/part)``, kept for the next call."""
        if part not in self._cache:
            self._cache[part] = load(stored(self, part))
        return self._cache[part]

    def check(self, space_params) -> None:
        """Refuse stored data that the row's ``space`` params did not make (nothing stored: nothing to check)."""


class TokenSpace(StoredSpace):
    """Token rows: the state is the project tokenizer's ids; nothing is cached and nothing decodes."""


class FeatureSpace(StoredSpace):
    """Frozen-encoder rows: standardised MiniLM features of the training split (``data/``) and the trained
    decoder back to WordPiece ids (``decoder/``)."""

    kind, trains_decoder = "features", True

    @property
    def features(self):
        from textdiff.spaces.minilm import FeatureCache

        return self.read("data", FeatureCache.load)

    def decoder(self, device):
        from textdiff.spaces.decoder import load_decoder

        return load_decoder(stored(self, "decoder"), device)

    def check(self, space_params: EncoderSpaceParams) -> None:
        cache = self.features
        if cache.max_length != space_params.max_length or cache.kind != space_params.features:
            raise ValueError(f"the feature cache in {self.folder / 'data'} holds {cache.kind} of {cache.max_length} "
                             f"tokens; params ask for {space_params.features} of {space_params.max_length}: rerun "
                             "the space stage")


class LatentSpace(StoredSpace):
    """Latent rows: the trained sentence autoencoder (``autoencoder/``) and the training split's latents with
    their per-dimension statistics (``data/``)."""

    kind, trains_autoencoder = "latent", True

    @property
    def latents(self):
        from textdiff.spaces.autoencoders.latents import LatentCache

        return self.read("data", LatentCache.load)

    def autoencoder(self, device):
        from textdiff.spaces.autoencoders.model import load_autoencoder

        return load_autoencoder(stored(self, "autoencoder"), device)

    def check(self, space_params: LatentSpaceParams) -> None:
        latents, shape = self.latents, (space_params.num_latents, space_params.latent_dim)
        if tuple(latents.latents.shape[1:]) != shape or latents.autoencoder != space_params.autoencoder:
            raise ValueError(f"the latents in {self.folder / 'data'} are {latents.autoencoder} "
                             f"{tuple(latents.latents.shape[1:])}; params ask for {space_params.autoencoder} "
                             f"{shape}: rerun the space stage")


def stored(space, part: str) -> Path:
    """The folder of one stored part of a space (``data``, ``decoder``, ``autoencoder``)."""
    if space.folder is None:
        raise ValueError(f"this {space.kind} space was made without its folder (spaces/ROW): its {part} cannot be read")
    return space.folder / part


KINDS = {"tokens": TokenSpace, "features": FeatureSpace, "latent": LatentSpace}


def load(kind: str, folder: str | Path | None = None):
    """The space of ``kind`` stored under ``folder`` (a row's ``spaces/ROW``); its files are read when first
    asked for, so a space without a folder still says what it trains (``trains_autoencoder``, ...)."""
    if kind not in KINDS:
        raise ValueError(f"unknown space kind {kind!r}; known: {sorted(KINDS)}")
    return KINDS[kind](Path(folder) if folder is not None else None)


def for_row(space_params, folder: str | Path | None = None):
    """``load(kind_of(space_params), folder)``: the space a row section's ``space`` params describe."""
    return load(kind_of(space_params), folder)
