"""The project's subword tokenizer: byte-level BPE trained on the training split.

Saved in the Hugging Face format, so ``AutoTokenizer.from_pretrained(folder)``
loads it. Byte-level BPE has no unknown characters and decodes back to the exact
input text (the round-trip rate is reported by the tokenizer stage).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from textdiff.errors import InputError

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>",
                  "unk_token": "<unk>", "mask_token": "<mask>"}


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2):
    """Train byte-level BPE and return a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False, **SPECIAL_TOKENS)


def load_tokenizer(folder: str | Path):
    from transformers import AutoTokenizer

    folder = Path(folder)
    if not (folder / "tokenizer.json").exists():
        raise FileNotFoundError(f"no tokenizer in {folder} (run the tokenizer stage: dvc repro tokenizer)")
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except Exception as err:  # json's, tokenizers' and transformers' errors: a damaged file, whichever it is
        raise InputError(f"the tokenizer in {folder} cannot be loaded, a file of it is damaged or truncated "
                         f"({type(err).__name__}: {str(err)[:200]}); restore it with `dvc checkout {folder}` or "
                         f"re-run the stage: dvc repro -f tokenizer") from None


def round_trip_rate(tokenizer, texts: list[str]) -> float:
    """Fraction of texts that decode back to exactly themselves."""
    if not texts:
        return float("nan")
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    decoded = tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return sum(d == t for d, t in zip(decoded, texts)) / len(texts)
