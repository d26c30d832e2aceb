"""infill MODEL: fill the blanks of held-out sentences with known tokens held fixed (textdiff.tasks.infill).

The templates are the same for every row (the test split, ``infill`` params, the seed). A row whose family
cannot hold known positions writes why instead. Outputs samples/infill/MODEL.jsonl (every template with
its reference and fills) and metrics/infill/MODEL.json.
"""

from __future__ import annotations

import argparse
import math

from stages.common import JUDGE_LM, METRICS, MODELS, PREPARED, SAMPLES, TOKENIZER, dump, say, stage_main, stage_params
from textdiff.data.tokenizer import load_tokenizer
from textdiff.device import resolve_device
from textdiff.families import canvas_drawer, get_family
from textdiff.io import read_jsonl, write_json, write_jsonl
from textdiff.params.base import ParamsError
from textdiff.params.evaluation import EvaluateParams
from textdiff.params.tasks import InfillParams
from textdiff.tasks.infill import fill_records, fill_templates, held_out_templates, infill_metrics

@stage_main("infill")
def main(name: str) -> None:
    p = stage_params(infill=InfillParams, evaluate=EvaluateParams)
    section = p.row(name)
    family = get_family(section.family)
    out = METRICS / "infill" / f"{name}.json"
    if family.CANNOT_INFILL is not None:
        record = {"row": name, "supported": False, "reason": family.CANNOT_INFILL}
        write_jsonl(SAMPLES / "infill" / f"{name}.jsonl", [record])
        write_json(out, record)
        say("infill", f"{name} cannot infill: {family.CANNOT_INFILL}")
        return
    ip, seq_len = p.infill, section.model.seq_len
    if ip.max_tokens + 2 > seq_len:
        raise ParamsError(f"infill.max_tokens ({ip.max_tokens}) + <bos> and <eos> exceeds rows.{name}.model.seq_len "
                          f"({seq_len}): lower infill.max_tokens to {seq_len - 2} or less")
    device = resolve_device(p.device)
    tokenizer = load_tokenizer(TOKENIZER)
    test = [r["text"] for r in read_jsonl(PREPARED / "test.jsonl")]
    templates = held_out_templates(tokenizer, test, num=ip.num_templates, min_tokens=ip.min_tokens,
                                   max_tokens=ip.max_tokens, share=ip.blank_share, seed=p.seed)
    if len(templates) < 2:
        raise ParamsError(f"only {len(templates)} test sentences have infill.min_tokens ({ip.min_tokens}) tokens "
                          f"or more: lower infill.min_tokens")
    from textdiff.eval.judge import load_judge
    from textdiff.persist import load_model

    model, _ = load_model(MODELS / name, device)
    sample = section.sample
    canvases = fill_templates(canvas_drawer(family, model, sample, device), templates, seq_len,
                              tokenizer.pad_token_id, fills=ip.fills, batch_size=ip.batch_size, seed=p.seed,
                              device=device)
    records = fill_records(tokenizer, canvases, templates, ip.fills)
    judge = load_judge(p.evaluate, device, JUDGE_LM, TOKENIZER)
    nll, counts, _ = judge.score([f["text"] for r in records for f in r["fills"]])
    ref_nll, ref_counts, _ = judge.score([t.text for t in templates])
    metrics = {"row": name, "supported": True, "handicap": getattr(family, "INFILL_HANDICAP", None),
               **infill_metrics(records, nll, counts, resamples=p.evaluate.bootstrap, seed=p.seed),
               "reference_gen_ppl": math.exp(ref_nll.sum() / ref_counts.sum()),  # the held-out sentences themselves
               "sample_params": dump(sample), "infill_params": dump(ip)}
    write_jsonl(SAMPLES / "infill" / f"{name}.jsonl", records)
    write_json(out, metrics)
    say("infill", f"{name}: {len(templates)} templates × {ip.fills} fills, token accuracy "
                  f"{metrics['token_accuracy']:.3f}, span BLEU-2 {metrics['span_bleu2']:.1f}, filled gen_ppl "
                  f"{metrics['filled_gen_ppl']:.1f} (references {metrics['reference_gen_ppl']:.1f}), distinct fills "
                  f"{metrics['distinct_fills']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("row", help="a row of params.yaml's rows")
    main(parser.parse_args().row)
