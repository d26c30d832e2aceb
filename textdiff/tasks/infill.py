"""Infilling: templates with blanks, filled by a row that holds the known tokens fixed, and the fills scored.

A template is a canvas ``<bos> text <eos> <pad>…`` in project token ids with some positions blank.
Held-out templates come from test sentences: a seeded mix of one middle span and two spans, together
20–50 % of the sentence's tokens, with known tokens on both sides of every span. A user's template is a
string with ``___`` where ``blank_tokens`` tokens go. Each family's ``draw_canvas`` fills them
(``infill=(known, tokens)``); this module knows nothing of families.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from textdiff.errors import InputError
from textdiff.eval.bleu import bleu_from_statistics, bleu_statistics
from textdiff.eval.intervals import (CI_LEVEL, gen_ppl_resamples, mean_interval, percentile_interval,
                                     resample_counts)
from textdiff.progress import Progress

BLANK = "___"
BLEU_ORDER = 2  # spans are a few words long: BLEU-4 would be 0 for most of them


@dataclass(frozen=True)
class Template:
    text: str  # the reference sentence, or the user's template string
    tokens: tuple[int, ...]  # the canvas ids: reference tokens at the blanks (a user's template: <mask>)
    spans: tuple[tuple[int, int], ...]  # canvas positions [start, end) of each blank, left to right
    truncated: bool = False  # a held-out text longer than the template allows, cut (``text`` is the cut text)

    @property
    def blanks(self) -> list[int]:
        return [i for a, b in self.spans for i in range(a, b)]

    def to_dict(self) -> dict:
        return {"text": self.text, "tokens": list(self.tokens), "spans": [list(s) for s in self.spans],
                "truncated": self.truncated}


# --------------------------------------------------------------------------- templates


def held_out_templates(tokenizer, texts: list[str], *, num: int, min_tokens: int, max_tokens: int,
                       share: tuple[float, float], seed: int) -> list[Template]:
    """``num`` templates: the texts of ``min_tokens``–``max_tokens`` tokens in corpus order, then (only if too
    few fit) the longer ones cut to their first ``max_tokens`` tokens (``Template.truncated``), as training
    cuts a text longer than the canvas."""
    rng = random.Random(seed)
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    fitting = [(t, seq, False) for t, seq in zip(texts, ids) if min_tokens <= len(seq) <= max_tokens]
    longer = [(tokenizer.decode(seq[:max_tokens]), seq[:max_tokens], True) for seq in ids if len(seq) > max_tokens]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    out = []
    for text, seq, truncated in (fitting + longer)[:num]:
        spans = masked_spans(len(seq), rng, share, two=len(out) % 2 == 1)
        out.append(Template(text, tuple([bos] + seq + [eos]), tuple((a + 1, b + 1) for a, b in spans), truncated))
    return out


def masked_spans(n: int, rng: random.Random, share: tuple[float, float], two: bool) -> list[tuple[int, int]]:
    """One (``two=False``) or two blank spans over text positions 0..n−1 covering a share drawn in ``share``
    of them, each with a known token on both sides (and between the two)."""
    room = n - (3 if two else 2)  # tokens that may be blank once the separators are kept
    m = min(room, max(2 if two else 1, round(rng.uniform(*share) * n)))
    if not two:
        start = rng.randint(1, n - m - 1)
        return [(start, start + m)]
    m1 = rng.randint(1, m - 1)
    m2 = m - m1
    free = n - m - 3  # known tokens beyond the three separators, placed at random in the three gaps
    cuts = sorted(rng.randint(0, free) for _ in range(2))
    a = 1 + cuts[0]
    b = a + m1 + 1 + (cuts[1] - cuts[0])
    return [(a, a + m1), (b, b + m2)]


def parse_template(tokenizer, template: str, seq_len: int, blank_tokens: int, row: str = "the row") -> Template:
    """A user's template: each ``___`` becomes ``blank_tokens`` blank positions. Text around a blank keeps
    its leading space (byte-level BPE puts the space in the next token), loses its trailing one."""
    if BLANK not in template:
        raise InputError(f"the template {template!r} has no blank: mark each span to fill with {BLANK}")
    if blank_tokens < 1:
        raise InputError(f"blank_tokens is {blank_tokens}: a blank needs at least one token")
    pieces = template.split(BLANK)
    ids, spans = [tokenizer.bos_token_id], []
    for i, piece in enumerate(pieces):
        piece = piece.rstrip() if i < len(pieces) - 1 else piece
        if piece:
            ids += tokenizer(piece, add_special_tokens=False)["input_ids"]
        if i < len(pieces) - 1:
            spans.append((len(ids), len(ids) + blank_tokens))
            ids += [tokenizer.mask_token_id] * blank_tokens
    ids.append(tokenizer.eos_token_id)
    if len(ids) > seq_len:
        raise InputError(f"the template takes {len(ids)} tokens with its blanks, <bos> and <eos>; {row}'s canvas "
                         f"holds {seq_len} (shorten it or use fewer blank tokens)")
    return Template(template, tuple(ids), tuple(spans))


def canvas_tensors(templates: list[Template], seq_len: int, pad_id: int, repeats: int = 1
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(known, tokens), each (len(templates)·repeats, seq_len): every template ``repeats`` times in a row;
    known everywhere but the blanks (the padding after <eos> included)."""
    tokens = torch.full((len(templates), seq_len), pad_id, dtype=torch.long)
    known = torch.ones_like(tokens, dtype=torch.bool)
    for i, tpl in enumerate(templates):
        if len(tpl.tokens) > seq_len:
            raise InputError(f"a template of {len(tpl.tokens)} tokens does not fit the canvas of {seq_len}")
        tokens[i, : len(tpl.tokens)] = torch.tensor(tpl.tokens)
        known[i, tpl.blanks] = False
    return known.repeat_interleave(repeats, 0), tokens.repeat_interleave(repeats, 0)


# --------------------------------------------------------------------------- reading the fills


def filled_text(tokenizer, canvas: list[int], template: Template) -> str:
    """The whole filled sentence: the canvas up to the template's <eos>, special tokens left out."""
    special = set(tokenizer.all_special_ids)
    return tokenizer.decode([t for t in canvas[1: len(template.tokens) - 1] if t not in special],
                            clean_up_tokenization_spaces=False)


def span_texts(tokenizer, canvas: list[int], template: Template) -> list[str]:
    special = set(tokenizer.all_special_ids)
    return [tokenizer.decode([t for t in canvas[a:b] if t not in special], clean_up_tokenization_spaces=False)
            for a, b in template.spans]


def fill_records(tokenizer, canvases: torch.Tensor, templates: list[Template], repeats: int) -> list[dict]:
    """One record per template: the template, its reference spans and every fill (sentence, spans, tokens)."""
    records = []
    for i, tpl in enumerate(templates):
        rows = canvases[i * repeats:(i + 1) * repeats].tolist()
        records.append({**tpl.to_dict(), "reference_spans": span_texts(tokenizer, list(tpl.tokens), tpl),
                        "fills": [{"text": filled_text(tokenizer, row, tpl), "spans": span_texts(tokenizer, row, tpl),
                                   "tokens": [row[j] for j in tpl.blanks], "canvas": row[: len(tpl.tokens)]}
                                  for row in rows]})
    return records


# --------------------------------------------------------------------------- metrics


def token_accuracy(record: dict) -> float:
    """Share of the blank positions whose token equals the reference, over the template's fills."""
    truth = [record["tokens"][j] for a, b in record["spans"] for j in range(a, b)]
    hits = [sum(f == t for f, t in zip(fill["tokens"], truth)) / len(truth) for fill in record["fills"]]
    return float(np.mean(hits))


def distinct_fills(record: dict) -> float:
    """(distinct fills − 1) / (fills − 1): 0 when every fill of the template is the same, 1 when all differ."""
    fills = record["fills"]
    distinct = len({tuple(f["tokens"]) for f in fills})
    return (distinct - 1) / (len(fills) - 1) if len(fills) > 1 else float("nan")


def infill_metrics(records: list[dict], judge_nll: np.ndarray, judge_counts: np.ndarray, *,
                   resamples: int, seed: int, level: float = CI_LEVEL) -> dict:
    """Token accuracy, span BLEU-2, the judge's perplexity of the filled sentences and the diversity of the
    fills, each with a bootstrap interval over templates. ``judge_nll`` / ``judge_counts``: per filled
    sentence, in the order of the records' fills."""
    acc = np.array([token_accuracy(r) for r in records])
    div = np.array([distinct_fills(r) for r in records])
    stats = np.array([sum(bleu_statistics(" ".join(f["spans"]), " ".join(r["reference_spans"]), BLEU_ORDER)
                          for f in r["fills"]) for r in records])
    fills = len(records[0]["fills"])
    nll = np.asarray(judge_nll, dtype=np.float64).reshape(len(records), fills).sum(1)
    counts = np.asarray(judge_counts, dtype=np.float64).reshape(len(records), fills).sum(1)
    w = resample_counts(len(records), resamples, np.random.default_rng(seed))
    on = w.shape[1] > 0
    bleu_resampled = np.array([bleu_from_statistics(stats.T @ w[:, b], BLEU_ORDER) for b in range(w.shape[1])])
    return {
        "templates": len(records), "fills_per_template": fills,
        "truncated_templates": sum(bool(r.get("truncated")) for r in records),
        "blank_share": float(np.mean([sum(b - a for a, b in r["spans"]) / (len(r["tokens"]) - 2) for r in records])),
        "token_accuracy": float(acc.mean()),
        "token_accuracy_ci": mean_interval(acc, resamples, seed, level) if on else None,
        "span_bleu2": bleu_from_statistics(stats.sum(0), BLEU_ORDER),
        "span_bleu2_ci": percentile_interval(bleu_resampled, level) if on else None,
        "filled_gen_ppl": float(np.exp(nll.sum() / counts.sum())),
        "filled_gen_ppl_ci": percentile_interval(gen_ppl_resamples(nll, counts, w), level) if on else None,
        "distinct_fills": float(np.nanmean(div)),
        "distinct_fills_ci": mean_interval(div, resamples, seed, level) if on else None,
        "ci_level": level, "bootstrap_resamples": int(w.shape[1]),
    }


# --------------------------------------------------------------------------- running a row


def fill_templates(draw, templates: list[Template], seq_len: int, pad_id: int, *, fills: int, batch_size: int,
                   seed: int, device) -> torch.Tensor:
    """Every template filled ``fills`` times, in batches, by ``draw(num, generator, infill=…)``
    (textdiff.families.canvas_drawer); one generator seeded by ``seed``. Returns the
    (len(templates)·fills, seq_len) canvases."""
    known, tokens = canvas_tensors(templates, seq_len, pad_id, fills)
    gen = torch.Generator(device=device).manual_seed(seed)
    out = []
    with Progress(-(-len(known) // batch_size), "infill", unit="batches") as progress:
        for start in range(0, len(known), batch_size):
            part = slice(start, start + batch_size)
            canvas = draw(len(known[part]), gen, infill=(known[part].to(device), tokens[part].to(device)))
            out.append(canvas.cpu())
            progress.update(1)
    return torch.cat(out)
