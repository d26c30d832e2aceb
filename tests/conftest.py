import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")
if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs two workers: one core each, stage subprocesses too
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def fp32_training_in_process():
    """In-process training under ``precision: auto`` runs fp32 on every machine, as the learning thresholds were
    measured: auto's own bf16-or-fp32 measurement (textdiff.training.peak.choose_cpu_precision) is tested on its
    own, and stage subprocesses measure for real."""
    from textdiff.training import peak

    peak._CHOSEN["cpu"] = ("fp32", "tests: fp32, as the learning thresholds were measured")
    yield
    peak._CHOSEN.pop("cpu", None)


@pytest.fixture(scope="session")
def review_texts() -> list[str]:
    """Real sentences from the bundled corpus (cleaned, deduplicated)."""
    from textdiff.config import DataParams
    from textdiff.data.clean import clean_records
    from textdiff.data.sources import load_records

    kept, _ = clean_records(load_records(DataParams()), 3, 30, "words", ["fresh", "rotten"])
    return [r["text"] for r in kept[:1200]]


@pytest.fixture(scope="session")
def small_tokenizer(review_texts, tmp_path_factory):
    """A BPE tokenizer trained on 1000 real sentences, saved and reloaded through AutoTokenizer."""
    from textdiff.data.tokenizer import load_tokenizer, train_tokenizer

    folder = tmp_path_factory.mktemp("tok")
    train_tokenizer(review_texts[:1000], vocab_size=600).save_pretrained(str(folder))
    return load_tokenizer(folder)


@pytest.fixture(scope="module")
def tiny_judge(small_tokenizer):
    """A real (untrained, seeded) project-tokenizer judge: the judge stage's scoring path on a small AR model."""
    import torch

    from textdiff.config import BackboneParams
    from textdiff.data.vocab import Vocab
    from textdiff.eval.judge import ProjectJudge
    from textdiff.families import ar

    vocab = Vocab.from_tokenizer(small_tokenizer)
    torch.manual_seed(0)
    model = ar.build_backbone(BackboneParams(d_model=32, n_layers=1, n_heads=2, seq_len=64), vocab)
    return ProjectJudge(model, small_tokenizer, vocab, torch.device("cpu"), batch_size=3)
