"""Use a trained row from Python, three lines a task:

    import textdiff
    model = textdiff.load("models/mdlm")
    model.sample(3), model.infill("the film is ___ ."), model.guide("fresh", n=3), model.likelihood(["..."])

A row's folder (``models/ROW``, written by its train stage) holds its weights, its family and params
(``model.json``) and the project tokenizer (``tokenizer/``). Rows that decode through a trained space
(the encoder and latent rows) also read ``spaces/ROW`` beside ``models/``, and guidance reads the attribute
classifier in ``classifiers/guide``; both are found from the folder, or passed.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import ValidationError

from textdiff.data.tokenizer import load_tokenizer
from textdiff.data.vocab import Vocab
from textdiff.errors import InputError
from textdiff.families import get_family
from textdiff.persist import model_family

DEFAULT_STRENGTH = 4.0  # control.strength's default in params (textdiff.config.ControlParams)


def load(folder: str | Path, device: str | torch.device = "cpu", *, space_dir: str | Path | None = None,
         classifier_dir: str | Path | None = None) -> "TrainedModel":
    """The trained row in ``folder`` (``models/ROW``), ready to sample, infill, guide and score."""
    from textdiff.persist import load_model

    folder = Path(folder)
    if not (folder / "model.json").exists():
        raise InputError(f"{folder} holds no trained model (no model.json): give a row's folder, e.g. models/mdlm, "
                         f"after its train stage has run")
    device = torch.device(device)
    module, meta = load_model(folder, device)
    root = folder.resolve().parent.parent
    row = meta.get("row", folder.name)
    return TrainedModel(row, module, meta, tokenizer_for(folder, root), device,
                        Path(space_dir) if space_dir else root / "spaces" / row,
                        Path(classifier_dir) if classifier_dir else root / "classifiers" / "guide")


def tokenizer_for(folder: Path, root: Path):
    """The tokenizer saved with the model, else the checkout's ``data/tokenizer`` (models trained before
    the train stage copied it)."""
    own = folder / "tokenizer"
    return load_tokenizer(own if (own / "tokenizer.json").exists() else root / "data" / "tokenizer")


class TrainedModel:
    def __init__(self, row: str, module: torch.nn.Module, meta: dict, tokenizer, device: torch.device,
                 space_dir: Path, classifier_dir: Path):
        self.row, self.module, self.tokenizer, self.device = row, module, tokenizer, device
        self.family = get_family(model_family(meta, Path(row)))
        self.section = self.family.PARAMS.model_validate(meta["params"])
        self.vocab = Vocab(**meta["vocab"])
        self.space_dir, self.classifier_dir = space_dir, classifier_dir

    def __repr__(self) -> str:
        return f"<textdiff model {self.row} ({self.family.__name__.rsplit('.', 1)[-1]} family)>"

    # ---------------------------------------------------------------- what it can do

    @property
    def seq_len(self) -> int:
        return self.section.model.seq_len

    def cannot(self, task: str) -> str | None:
        """Why the row cannot ``infill`` or ``guide`` (None when it can)."""
        return getattr(self.family, {"infill": "CANNOT_INFILL", "guide": "CANNOT_GUIDE"}[task])

    def _require(self, task: str) -> None:
        reason = self.cannot(task)
        if reason is not None:
            raise InputError(f"{self.row} cannot {task}: {reason}")

    @staticmethod
    def _count(n: int, what: str) -> int:
        if not isinstance(n, int) or n < 1:
            raise InputError(f"n is {n!r}: ask for at least one {what}")
        return n

    def sample_params(self, **overrides):
        """The row's sample params with ``overrides`` (None values left out), checked by the schema."""
        base = self.section.sample
        overrides = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(overrides) - set(type(base).model_fields))
        if unknown:
            raise InputError(f"{self.row} has no sample setting {', '.join(unknown)} "
                             f"(its settings: {', '.join(type(base).model_fields)})")
        try:
            return type(base).model_validate({**base.model_dump(), **overrides})
        except ValidationError as err:
            raise InputError(f"{self.row}: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                                        for e in err.errors())) from None

    def run(self, seed: int):
        """The run context a family samples under: this model's device and its row's space."""
        from textdiff.families.contract import RunContext
        from textdiff.spaces.registry import for_row

        return RunContext(seed=seed, device=self.device, space=for_row(self.section.space, self.space_dir))

    # ---------------------------------------------------------------- tasks

    def sample(self, n: int = 5, *, steps: int | None = None, seed: int = 0) -> list[str]:
        """``n`` texts with the row's sample params (``steps`` reverse steps if given)."""
        self._count(n, "text")
        params = self.sample_params(num_samples=max(n, 2), steps=steps)
        params = params.model_copy(update={"num_samples": n, "batch_size": min(params.batch_size, n)})
        texts, _ = self.family.sample_texts(self.module, self.tokenizer, params, self.run(seed))
        return texts

    def infill(self, template: str, *, n: int = 1, blank_tokens: int = 3, steps: int | None = None,
               seed: int = 0) -> list[str]:
        """``n`` fills of ``template``, each ``___`` a blank of ``blank_tokens`` tokens; the known text is kept."""
        from textdiff.tasks.infill import fill_templates, filled_text, parse_template

        self._require("infill")
        self._count(n, "fill")
        tpl = parse_template(self.tokenizer, template, self.seq_len, blank_tokens, self.row)
        params = self.sample_params(steps=steps)
        canvases = fill_templates(self._draw(params), [tpl], self.seq_len, self.vocab.pad_id, fills=n,
                                  batch_size=n, seed=seed, device=self.device)
        return [filled_text(self.tokenizer, row, tpl) for row in canvases.tolist()]

    def guide(self, label: str, *, n: int = 5, strength: float = DEFAULT_STRENGTH, steps: int | None = None,
              seed: int = 0) -> list[str]:
        """``n`` texts guided toward ``label`` by the attribute classifier at ``strength`` (0: unguided)."""
        from textdiff.tasks.attribute_classifier import load_classifier
        from textdiff.tasks.control import guided_texts

        self._require("guide")
        self._count(n, "text")
        if strength < 0:
            raise InputError(f"strength is {strength}: guidance strength must be >= 0")
        classifier = load_classifier(self.classifier_dir, self.device)
        if classifier.embedding.num_embeddings != self.vocab.size:
            raise InputError(f"the attribute classifier in {self.classifier_dir} reads {classifier.embedding.num_embeddings} "
                             f"tokens but {self.row} has {self.vocab.size}: they were trained on different tokenizers "
                             f"(re-run `dvc repro guide_classifier`, or pass classifier_dir)")
        guidance = classifier.guidance(label, strength)
        return guided_texts(self._draw(self.sample_params(steps=steps)), self.module, self.tokenizer, n, guidance,
                            batch_size=n, seed=seed, device=self.device)

    def likelihood(self, texts: list[str], *, seed: int = 0) -> dict:
        """The row's held-out perplexity on ``texts`` (exact for AR, a bound for diffusion; see each family)."""
        if isinstance(texts, str):
            texts = [texts]
        torch.manual_seed(seed)
        return self.family.likelihood(self.module, self.tokenizer, list(texts), device=self.device, seed=seed)

    def _draw(self, params):
        from textdiff.families import canvas_drawer

        return canvas_drawer(self.family, self.module, params, self.device)
