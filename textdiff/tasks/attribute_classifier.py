"""The attribute classifier that guides sampling: p(label | canvas) over soft canvases of project tokens.

A bag of token embeddings (special tokens weigh nothing), averaged over the content tokens, then a small
MLP. It reads token ids (training) or (B, L, V) token distributions (guidance) with the same maths, so
its gradient with respect to a distribution is what the samplers add (textdiff.sampling.guidance).
Training drops a random share of the tokens of each sentence, so that it also reads the partly
revealed canvases of a reverse process. It is trained once on the training split (its own stage) and
is never the judge of success: an independent classifier is (textdiff.tasks.attribute_judge).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from textdiff.data.batching import encode_sequences, pad_batch
from textdiff.errors import InputError
from textdiff.io import atomic_path, read_json, write_json
from textdiff.sampling.guidance import Guidance


class AttributeClassifier(nn.Module):
    def __init__(self, vocab_size: int, special_ids: list[int], labels: list[str], dim: int = 64, hidden: int = 64):
        super().__init__()
        self.labels, self.special_ids = list(labels), sorted(special_ids)
        self.embedding = nn.Embedding(vocab_size, dim)
        content = torch.ones(vocab_size)
        content[self.special_ids] = 0.0
        self.register_buffer("content", content)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, len(labels)))

    def config(self) -> dict:
        return {"vocab_size": self.embedding.num_embeddings, "special_ids": self.special_ids, "labels": self.labels,
                "dim": self.embedding.embedding_dim, "hidden": self.mlp[0].out_features}

    def forward(self, canvas: torch.Tensor) -> torch.Tensor:
        """Label logits (B, labels) of token ids (B, L) or token distributions (B, L, V)."""
        if canvas.dtype == torch.long:
            weight = self.content[canvas]  # (B, L)
            summed = (self.embedding(canvas) * weight[..., None]).sum(1)
        else:
            weighted = canvas * self.content  # the content mass of each token
            weight = weighted.sum(-1)
            summed = (weighted @ self.embedding.weight).sum(1)
        return self.mlp(summed / weight.sum(1, keepdim=True).clamp_min(1e-6))

    def label_index(self, label: str) -> int:
        if label not in self.labels:
            raise InputError(f"unknown label {label!r}; the corpus's labels are {self.labels}")
        return self.labels.index(label)

    def guidance(self, label: str, strength: float) -> Guidance:
        """Guidance toward ``label``: the score is log p(label | canvas)."""
        index = self.label_index(label)
        return Guidance(lambda probs: torch.log_softmax(self(probs), -1)[:, index], strength)


# --------------------------------------------------------------------------- training and accuracy


def train_classifier(tokenizer, texts: list[str], labels: list[str], *, seq_len: int, steps: int, batch_size: int,
                     lr: float, dim: int, hidden: int, max_drop: float, seed: int) -> AttributeClassifier:
    """AdamW on the cross-entropy of the labels; each sentence loses a share U(0, ``max_drop``) of its tokens
    (replaced by <mask>, which weighs nothing)."""
    names = sorted(set(labels))
    torch.manual_seed(seed)
    model = AttributeClassifier(len(tokenizer), tokenizer.all_special_ids, names, dim, hidden)
    ids = pad_batch(encode_sequences(tokenizer, texts, seq_len), tokenizer.pad_token_id, seq_len)
    targets = torch.tensor([names.index(lb) for lb in labels])
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    for _ in range(steps):
        rows = torch.randint(0, len(texts), (batch_size,), generator=gen)
        batch = ids[rows]
        drop = torch.rand(batch.shape, generator=gen) < max_drop * torch.rand(batch_size, 1, generator=gen)
        batch = torch.where(drop, torch.full_like(batch, tokenizer.mask_token_id), batch)
        loss = F.cross_entropy(model(batch), targets[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: AttributeClassifier, tokenizer, texts: list[str], labels: list[str], seq_len: int) -> float:
    ids = pad_batch(encode_sequences(tokenizer, texts, seq_len), tokenizer.pad_token_id, seq_len)
    predicted = model(ids).argmax(-1).tolist()
    return sum(model.labels[p] == lb for p, lb in zip(predicted, labels)) / len(labels)


# --------------------------------------------------------------------------- files


def save_classifier(folder: Path, model: AttributeClassifier, record: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_json(folder / "classifier.json", {**model.config(), **record})


def load_classifier(folder: Path, device: torch.device | str = "cpu") -> AttributeClassifier:
    folder = Path(folder)
    record = folder / "classifier.json"
    if record.exists() and not read_json(record).get("labels"):
        raise InputError(f"no attribute classifier in {folder}: {read_json(record).get('reason', 'no labels')}")
    if not (folder / "model.safetensors").exists():
        raise FileNotFoundError(f"no attribute classifier at {folder} (run its stage: dvc repro guide_classifier)")
    cfg = read_json(folder / "classifier.json")
    model = AttributeClassifier(cfg["vocab_size"], cfg["special_ids"], cfg["labels"], cfg["dim"], cfg["hidden"])
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model.to(device).eval()
