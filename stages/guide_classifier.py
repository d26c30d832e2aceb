"""guide_classifier: the attribute classifier that guides the control@ROW stages, trained on the training split's
labels (textdiff.tasks.attribute_classifier); its held-out accuracy on the test split is recorded.

On a corpus without labels it writes why, and every control@ROW stage then says so.
Outputs classifiers/guide/ and metrics/guide_classifier.json.
"""

from __future__ import annotations


from stages.common import GUIDE_CLASSIFIER, METRICS, PREPARED, TOKENIZER, dump, say, stage_main, stage_params
from textdiff.data.tokenizer import load_tokenizer
from textdiff.io import read_jsonl, write_json
from textdiff.params.data import DataParams
from textdiff.params.tasks import ControlParams
from textdiff.tasks.attribute_classifier import accuracy, save_classifier, train_classifier
from textdiff.tasks.control import labelled, majority_share, no_labels_reason

SEQ_LEN = 64  # tokens read per sentence (the data's max_length keeps most sentences under it)


@stage_main("guide_classifier")
def main() -> None:
    p = stage_params(control=ControlParams, data=DataParams)
    cp = p.control.classifier
    texts, labels = labelled(read_jsonl(PREPARED / "train.jsonl"))
    test_texts, test_labels = labelled(read_jsonl(PREPARED / "test.jsonl"))
    reason = no_labels_reason(labels, p.data.label_column, test_labels)
    out = METRICS / "guide_classifier.json"
    if reason:
        GUIDE_CLASSIFIER.mkdir(parents=True, exist_ok=True)
        write_json(GUIDE_CLASSIFIER / "classifier.json", {"labels": [], "reason": reason})
        write_json(out, {"supported": False, "reason": reason})
        say("guide_classifier", reason)
        return
    tokenizer = load_tokenizer(TOKENIZER)
    model = train_classifier(tokenizer, texts, labels, seq_len=SEQ_LEN, steps=cp.steps, batch_size=cp.batch_size,
                             lr=cp.lr, dim=cp.dim, hidden=cp.hidden, max_drop=cp.max_drop, seed=p.seed)
    record = {"supported": True, "train_sentences": len(texts), "test_sentences": len(test_texts),
              "heldout_accuracy": accuracy(model, tokenizer, test_texts, test_labels, SEQ_LEN),
              "majority_share": majority_share(test_labels),
              "params": dump(cp)}
    save_classifier(GUIDE_CLASSIFIER, model, record)
    write_json(out, record)
    say("guide_classifier", f"labels {model.labels}: held-out accuracy {record['heldout_accuracy']:.3f} "
                            f"(majority label {record['majority_share']:.3f})")


if __name__ == "__main__":
    main()
