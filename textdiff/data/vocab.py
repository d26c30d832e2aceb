"""The special token ids every model needs, read once from the tokenizer."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Vocab:
    size: int
    pad_id: int
    bos_id: int
    eos_id: int
    mask_id: int | None = None

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "Vocab":
        return cls(len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id,
                   tokenizer.mask_token_id)

    def to_dict(self) -> dict:
        return asdict(self)

    def strip(self, ids: list[int]) -> list[int]:
        """Token ids of the text: cut at the first <eos>, drop <bos>, <pad> and <mask>."""
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        drop = {self.pad_id, self.bos_id, self.mask_id}
        return [i for i in ids if i not in drop]
