"""Generative perplexity and entropy under a judge LM.

The judge is the pipeline's own AR model (``ProjectJudge``) or any Hugging Face
causal LM given by a local path (``HFJudge``). Both score a text as
``<bos> text <eos>`` and count every token after <bos>.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import torch

from textdiff.eval.ngrams import unigram_entropy
from textdiff.losses.causal import sequence_nll
from textdiff.progress import Progress

TRAINED_JUDGE = "judge"  # the evaluate.judge value that means "the judge stage's trained LM"


def load_judge(evaluate, device, judge_dir: Path, tokenizer_dir: Path):
    """The judge ``evaluate`` names (its ``judge`` and ``batch_size``), ready to score texts (``.score(texts)``):
    the judge stage's LM in ``judge_dir`` on the project tokenizer in ``tokenizer_dir``, or a Hugging Face causal
    LM at a local path."""
    if evaluate.judge == TRAINED_JUDGE:
        from textdiff.data.tokenizer import load_tokenizer
        from textdiff.data.vocab import Vocab
        from textdiff.persist import load_model

        model, _ = load_model(judge_dir, device)
        tok = load_tokenizer(tokenizer_dir)
        return ProjectJudge(model, tok, Vocab.from_tokenizer(tok), device, evaluate.batch_size)
    return HFJudge(evaluate.judge, device, evaluate.batch_size)


class ProjectJudge:
    def __init__(self, model, tokenizer, vocab, device: torch.device, batch_size: int = 64):
        self.model, self.tokenizer, self.vocab = model.eval().to(device), tokenizer, vocab
        self.device, self.batch_size = device, batch_size

    def score(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
        """Per-text summed NLL (nats), token counts and the text's token ids."""
        from textdiff.data.batching import encode_sequences, pad_batch

        seqs = encode_sequences(self.tokenizer, texts, self.model.cfg.max_len)
        nll, counts = [], []
        with Progress(-(-len(seqs) // self.batch_size), "judge", unit="batches") as progress:
            for i in range(0, len(seqs), self.batch_size):
                batch = pad_batch(seqs[i:i + self.batch_size], self.vocab.pad_id).to(self.device)
                s, c = sequence_nll(self.model, batch, self.vocab)
                nll.append(s.cpu())
                counts.append(c.cpu())
                progress.update(1)
        return torch.cat(nll).numpy(), torch.cat(counts).numpy(), [s[1:] for s in seqs]


class HFJudge:
    """Any local causal LM in the Hugging Face format (never trust_remote_code)."""

    def __init__(self, path: str | Path, device: torch.device, batch_size: int = 16):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from textdiff.params.base import ParamsError

        if not (Path(path) / "config.json").is_file():
            raise ParamsError(f"evaluate.judge: {path} is not a Hugging Face model folder (no config.json); give "
                              f"'judge' or the local folder of a causal LM saved with save_pretrained")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True).eval().to(device)
        except pickle.UnpicklingError:
            weights = sorted(p.name for p in Path(path).glob("*.bin")) or ["its weights file"]
            raise ParamsError(f"evaluate.judge: {Path(path) / weights[0]} holds pickled Python objects, which are "
                              f"never loaded (they could run code); save the model as safetensors: "
                              f"model.save_pretrained({str(path)!r}, safe_serialization=True)") from None
        except (OSError, ValueError, KeyError) as err:
            raise ParamsError(f"evaluate.judge: cannot load a causal LM from {path}: {err}") from None
        self.device, self.batch_size = device, batch_size
        self.max_len = getattr(self.model.config, "n_positions", None) or self.model.config.max_position_embeddings

    @torch.no_grad()
    def score(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
        bos = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id
        eos = self.tokenizer.eos_token_id
        ids = [([bos] + s + [eos])[: self.max_len] for s in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        nll, counts = [], []
        for i in range(0, len(ids), self.batch_size):
            chunk = ids[i:i + self.batch_size]
            width = max(len(s) for s in chunk)
            batch = torch.zeros(len(chunk), width, dtype=torch.long)
            mask = torch.zeros(len(chunk), width, dtype=torch.long)
            for j, s in enumerate(chunk):
                batch[j, : len(s)], mask[j, : len(s)] = torch.tensor(s), 1
            batch, mask = batch.to(self.device), mask.to(self.device)
            logits = self.model(input_ids=batch, attention_mask=mask).logits[:, :-1].float()
            tok_nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch[:, 1:], reduction="none")
            valid = mask[:, 1:].bool()
            nll.append((tok_nll * valid).sum(1).cpu())
            counts.append(valid.sum(1).cpu())
        return torch.cat(nll).numpy(), torch.cat(counts).numpy(), [s[1:] for s in ids]


def perplexity_scores(judge, texts: list[str]) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """(``perplexity_metrics``'s numbers, the per-text arrays they come from), scoring the texts once.

    The arrays, for bootstrapping (textdiff.eval.intervals): ``nll`` (summed nats per
    text), ``counts`` (its scored tokens) and ``entropy`` (its unigram entropy).
    """
    nll, counts, ids = judge.score(texts)
    entropies = np.array([unigram_entropy(s) for s in ids], dtype=np.float64)
    metrics = {
        "gen_ppl": float(math.exp(nll.sum() / counts.sum())),
        "gen_ppl_sample_mean": float(np.mean(np.exp(nll / np.maximum(counts, 1)))),
        "entropy": float(np.mean(entropies)),
    }
    return metrics, {"nll": np.asarray(nll, dtype=np.float64), "counts": np.asarray(counts, dtype=np.int64),
                     "entropy": entropies}


def perplexity_metrics(judge, texts: list[str]) -> dict[str, float]:
    """gen_ppl (token-weighted), the per-sample mean ppl, and the mean per-sample unigram entropy."""
    return perplexity_scores(judge, texts)[0]
