"""The data stages' sections: the corpus and its splits, the tokenizer, the shared MiniLM features."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from textdiff.params.base import Section


CORPUS_DIR = "corpus"  # local corpus files live here; dvc.yaml makes the folder a dependency of prepare


class DataParams(Section):
    source: Literal["rotten_tomatoes", "huggingface", "files"] = "rotten_tomatoes"
    hf_dataset: str | None = Field(None, description="dataset name for source=huggingface")
    hf_config: str | None = None
    hf_split: str = "train"
    files: list[str] = Field(default_factory=list, description=".txt/.jsonl/.csv/.parquet paths")
    text_column: str = "text"
    label_column: str | None = Field("category", description="kept as the attribute label; null for none")
    keep_labels: list[str] | None = Field(
        None, description="keep only rows whose label is in this list (null keeps all)"
    )
    length_unit: Literal["words", "tokens"] = "words"
    min_length: int = Field(3, ge=1)
    max_length: int = Field(40, ge=1)
    max_examples: int | None = Field(None, ge=10, description="cap on the corpus after cleaning")
    valid_fraction: float = Field(0.05, gt=0, lt=1)
    test_fraction: float = Field(0.05, gt=0, lt=1)

    @model_validator(mode="after")
    def _check(self) -> "DataParams":
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) > max_length ({self.max_length})")
        if self.valid_fraction + self.test_fraction >= 1:
            raise ValueError("valid_fraction + test_fraction must leave training data (< 1)")
        if self.source == "huggingface" and not self.hf_dataset:
            raise ValueError("source=huggingface needs hf_dataset")
        if self.source == "files" and not self.files:
            raise ValueError("source=files needs at least one path in files")
        return self


def corpus_files_outside(data: DataParams) -> str | None:
    """Why local corpus files are refused, or None: they must sit in corpus/, the folder DVC hashes as a
    dependency of prepare (a pipeline rule, checked by Params and by stage prepare, not by DataParams, which reads
    files from anywhere when used as a library)."""
    if data.source != "files":
        return None
    for i, name in enumerate(data.files):
        parts = Path(name).parts
        if Path(name).is_absolute() or len(parts) < 2 or parts[0] != CORPUS_DIR or ".." in parts:
            return (f"data.files[{i}]: {name!r} is not inside {CORPUS_DIR}/; put (or copy) local corpus files in "
                    f"{CORPUS_DIR}/, which DVC tracks as a dependency of prepare, and name them as {CORPUS_DIR}/FILE")
    return None


class TokenizerParams(Section):
    vocab_size: int = Field(4096, ge=300, description="BPE vocabulary incl. 256 bytes and specials")
    min_frequency: int = Field(2, ge=1)


class FeaturesParams(Section):
    """MiniLM's encodings of the training and test splits, computed once (stage features) and read by every row
    that needs them at this canvas: the encoder rows' spaces and decoders, the latent rows' autoencoders and
    latent datasets. A row whose ``space.max_length`` differs encodes its own sentences (slower, same maths)."""

    max_length: int = Field(48, ge=4, description="MiniLM WordPiece tokens per sentence incl. [CLS] and [SEP]")
    batch_size: int = Field(128, ge=1, description="sentences per MiniLM call")
