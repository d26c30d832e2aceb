"""control_judge: the independent judge of control, logistic regression on frozen MiniLM sentence features of
the training split (textdiff.tasks.attribute_judge), with its held-out accuracy on the test split.

Outputs classifiers/judge/ and metrics/control_judge.json.
"""

from __future__ import annotations

import random

from stages.common import ATTRIBUTE_JUDGE, METRICS, PREPARED, say, stage_main, stage_params
from textdiff.device import resolve_device
from textdiff.io import read_jsonl, write_json
from textdiff.params.data import DataParams
from textdiff.params.tasks import ControlParams
from textdiff.tasks.attribute_judge import fit_judge
from textdiff.tasks.control import labelled, majority_share, no_labels_reason



@stage_main("control_judge")
def main() -> None:
    p = stage_params(control=ControlParams, data=DataParams)
    texts, labels = labelled(read_jsonl(PREPARED / "train.jsonl"))
    test_texts, test_labels = labelled(read_jsonl(PREPARED / "test.jsonl"))
    reason = no_labels_reason(labels, p.data.label_column, test_labels)
    out = METRICS / "control_judge.json"
    ATTRIBUTE_JUDGE.mkdir(parents=True, exist_ok=True)
    if reason:
        write_json(ATTRIBUTE_JUDGE / "judge.json", {"labels": [], "reason": reason})
        write_json(out, {"supported": False, "reason": reason})
        say("control_judge", reason)
        return
    pairs = list(zip(texts, labels))
    random.Random(p.seed).shuffle(pairs)
    pairs = pairs[: p.control.judge_sentences]
    device = str(resolve_device(p.device))
    judge = fit_judge([t for t, _ in pairs], [lb for _, lb in pairs], c=p.control.judge_c, seed=p.seed, device=device)
    record = {"supported": True, "train_sentences": len(pairs), "test_sentences": len(test_texts),
              "heldout_accuracy": judge.accuracy(test_texts, test_labels),
              "majority_share": majority_share(test_labels),
              "features": "all-MiniLM-L6-v2 sentence embeddings (mean-pooled, L2-normalised)",
              "judge_c": p.control.judge_c}
    judge.save(ATTRIBUTE_JUDGE, record)
    write_json(out, record)
    say("control_judge", f"labels {judge.labels}: held-out accuracy {record['heldout_accuracy']:.3f} "
                         f"(majority label {record['majority_share']:.3f})")


if __name__ == "__main__":
    main()
