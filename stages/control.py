"""control MODEL: samples guided toward each label by the attribute classifier (classifiers/guide), judged by
the independent classifier (classifiers/judge), against the row's own unguided samples drawn with the same
seed (textdiff.tasks.control, textdiff.sampling.guidance for how each family is guided).

A row whose family cannot be guided, or a corpus without labels, writes why instead.
Outputs samples/control/MODEL.jsonl and metrics/control/MODEL.json.
"""

from __future__ import annotations

import argparse

from stages.common import (ATTRIBUTE_JUDGE, GUIDE_CLASSIFIER, JUDGE_LM, METRICS, MODELS, PREPARED, SAMPLES, TOKENIZER,
                           dump, say, stage_main, stage_params)
from textdiff.data.tokenizer import load_tokenizer
from textdiff.device import resolve_device
from textdiff.families import canvas_drawer, get_family
from textdiff.io import read_json, read_jsonl, write_json, write_jsonl
from textdiff.params.evaluation import EvaluateParams
from textdiff.params.tasks import ControlParams
from textdiff.tasks.control import control_metrics, guided_texts, labelled, pooled_gen_ppl, steered_labels



def unsupported(name: str, reason: str) -> None:
    record = {"row": name, "supported": False, "reason": reason}
    write_jsonl(SAMPLES / "control" / f"{name}.jsonl", [record])
    write_json(METRICS / "control" / f"{name}.json", record)
    say("control", f"{name} not run: {reason}")


@stage_main("control")
def main(name: str) -> None:
    p = stage_params(control=ControlParams, evaluate=EvaluateParams)
    section = p.row(name)
    family = get_family(section.family)
    if family.CANNOT_GUIDE is not None:
        return unsupported(name, family.CANNOT_GUIDE)
    guide_record = read_json(GUIDE_CLASSIFIER / "classifier.json")
    if not guide_record["labels"]:
        return unsupported(name, guide_record["reason"])
    _, train_labels = labelled(read_jsonl(PREPARED / "train.jsonl"))
    targets = steered_labels(p.control.labels, train_labels)

    from textdiff.eval.judge import load_judge
    from textdiff.persist import load_model
    from textdiff.tasks.attribute_classifier import load_classifier
    from textdiff.tasks.attribute_judge import load_judge as load_attribute_judge

    cp, device = p.control, resolve_device(p.device)
    tokenizer = load_tokenizer(TOKENIZER)
    model, _ = load_model(MODELS / name, device)
    classifier = load_classifier(GUIDE_CLASSIFIER, device)
    judge = load_attribute_judge(ATTRIBUTE_JUDGE, str(device))
    lm_judge = load_judge(p.evaluate, device, JUDGE_LM, TOKENIZER)

    draw = canvas_drawer(family, model, section.sample, device)

    def texts_for(guide):
        return guided_texts(draw, model, tokenizer, cp.num_samples, guide, batch_size=cp.batch_size, seed=p.seed,
                            device=device)

    unguided = texts_for(None)
    unguided_predicted = judge.predict(unguided)
    per_label, records = {}, [{"label": None, "strength": 0.0, "texts": unguided}]
    for label in targets:
        texts = texts_for(classifier.guidance(label, cp.strength))
        per_label[label] = control_metrics(label, texts, judge.predict(texts), unguided_predicted, lm_judge,
                                           resamples=p.evaluate.bootstrap, seed=p.seed)
        records.append({"label": label, "strength": cp.strength, "texts": texts})
    unguided_ppl = control_metrics(targets[0], unguided, unguided_predicted, unguided_predicted, lm_judge,
                                   resamples=p.evaluate.bootstrap, seed=p.seed)
    metrics = {"row": name, "supported": True, "strength": cp.strength, "labels": per_label,
               # flat figures for ablation tables: the mean over labels, and every guided sample's gen_ppl
               "control_success": sum(m["success"] for m in per_label.values()) / len(per_label),
               "control_unguided_success": sum(m["unguided_success"] for m in per_label.values()) / len(per_label),
               "control_gen_ppl": pooled_gen_ppl(per_label),
               "unguided": {"gen_ppl": unguided_ppl["gen_ppl"], "gen_ppl_ci": unguided_ppl["gen_ppl_ci"],
                            "div": unguided_ppl["div"], "div_ci": unguided_ppl["div_ci"]},
               "judge_heldout_accuracy": read_json(ATTRIBUTE_JUDGE / "judge.json")["heldout_accuracy"],
               "sample_params": dump(section.sample), "control_params": dump(cp)}
    write_jsonl(SAMPLES / "control" / f"{name}.jsonl", records)
    write_json(METRICS / "control" / f"{name}.json", metrics)
    say("control", f"{name} at strength {cp.strength}: " + "; ".join(
        f"{lb} {m['success']:.2f} (unguided {m['unguided_success']:.2f}, gen_ppl {m['gen_ppl']:.0f})"
        for lb, m in per_label.items()) + f"; unguided gen_ppl {metrics['unguided']['gen_ppl']:.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("row", help="a row of params.yaml's rows")
    main(parser.parse_args().row)
