"""EMA weights, verified checkpoints and models: identities, fallbacks and clear errors."""

import json

import pytest
import torch

from textdiff.config import TrainParams
from textdiff.families import ar
from textdiff.training.ema import EMA
from textdiff.training.loop import train
from tests.test_ar import VOCAB, tiny_model, toy_batches

CPU = torch.device("cpu")


def loss(model, batch):
    return ar.training_loss(model, batch, VOCAB)


def run(cfg, folder=None, fingerprint="f", stop_after=None):
    model = tiny_model()
    result = train(model, loss, toy_batches, cfg, checkpoint_dir=folder, fingerprint=fingerprint, device=CPU,
                   progress=False, stop_after=stop_after)
    return model, result


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_ema_by_hand():
    """decay_at(s) = min(d, (1+s)/(10+s)); shadow ← d·shadow + (1−d)·w after each step."""
    layer = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.0)
    ema = EMA(layer, decay=0.5)
    expected = 0.0
    for step, w in enumerate([1.0, 2.0, 4.0]):
        with torch.no_grad():
            layer.weight.fill_(w)
        ema.update(layer, step)
        d = min(0.5, (1 + step) / (10 + step))  # 0.1, 0.1818…, 0.25
        expected = d * expected + (1 - d) * w
    assert ema.shadow["weight"].item() == pytest.approx(expected)
    raw = ema.swap_into(layer)
    assert raw["weight"].item() == 4.0 and layer.weight.item() == pytest.approx(expected)


def test_ema_leaves_the_optimisation_unchanged_and_averages():
    cfg = TrainParams(steps=20, lr=3e-3, warmup_steps=2, checkpoint_every=1000, log_every=5, weight_decay=0.0)
    plain, _ = run(cfg)
    averaged, result = run(cfg.model_copy(update={"ema_decay": 0.9}))
    assert_same(result.raw_weights, weights(plain))  # the raw trajectory is the plain run's
    moved = [k for k, v in weights(averaged).items() if v.is_floating_point() and not torch.equal(v, weights(plain)[k])]
    assert moved  # the model now holds the average, not the last weights


def test_killed_run_with_ema_resumes_to_the_same_weights(tmp_path):
    cfg = TrainParams(steps=12, lr=3e-3, warmup_steps=2, checkpoint_every=4, log_every=1, ema_decay=0.9)
    whole, whole_result = run(cfg)
    run(cfg, tmp_path, stop_after=9)  # killed after its step-8 checkpoint
    resumed, result = run(cfg, tmp_path)
    assert result.resumed_from == 8
    assert_same(weights(resumed), weights(whole))
    assert_same(result.raw_weights, whole_result.raw_weights)


@pytest.mark.parametrize("damage", ["truncate weights", "garbage state", "truncate optimizer", "delete checksums"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_intact_one(tmp_path, damage):
    cfg = TrainParams(steps=12, lr=3e-3, warmup_steps=2, checkpoint_every=4, log_every=1)
    whole, _ = run(cfg)
    run(cfg, tmp_path, stop_after=9)  # checkpoints at steps 4 and 8
    newest = tmp_path / "step_0000008"
    target = {"truncate weights": "model.safetensors", "garbage state": "state.json",
              "truncate optimizer": "optimizer.pt", "delete checksums": "checksums.json"}[damage]
    path = newest / target
    if damage == "delete checksums":
        path.unlink()
    elif damage == "garbage state":
        path.write_bytes(b"\x00\xffnot json")
    else:
        path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(UserWarning, match=target):
        resumed, result = run(cfg, tmp_path)
    assert result.resumed_from == 4 and result.steps == 12
    assert_same(weights(resumed), weights(whole))


def test_an_optimizer_file_holding_a_pickled_object_falls_back_like_a_damaged_one(tmp_path):
    """Checksums rewritten to match: weights_only refuses the object, and the run resumes from the older
    checkpoint (before: an uncaught UnpicklingError)."""
    import os

    from textdiff.training.checkpoint import CHECKSUMS, file_sha256
    cfg = TrainParams(steps=12, lr=3e-3, warmup_steps=2, checkpoint_every=4, log_every=1)
    whole, _ = run(cfg)
    run(cfg, tmp_path, stop_after=9)
    newest = tmp_path / "step_0000008"
    torch.save({"optimizer": {}, "rng": torch.get_rng_state(), "object": os.getcwd}, newest / "optimizer.pt")
    sums = json.loads((newest / CHECKSUMS).read_text())
    (newest / CHECKSUMS).write_text(json.dumps({**sums, "optimizer.pt": file_sha256(newest / "optimizer.pt")}))
    with pytest.warns(UserWarning, match=r"step_0000008/optimizer.pt holds more than tensors"):
        resumed, result = run(cfg, tmp_path)
    assert result.resumed_from == 4 and result.steps == 12
    assert_same(weights(resumed), weights(whole))


def test_latest_pointing_at_a_missing_folder_falls_back(tmp_path):
    cfg = TrainParams(steps=12, lr=3e-3, warmup_steps=2, checkpoint_every=4, log_every=1)
    run(cfg, tmp_path, stop_after=9)
    (tmp_path / "latest").write_text("step_0000099")
    with pytest.warns(UserWarning, match="step_0000099"):
        _, result = run(cfg, tmp_path)
    assert result.resumed_from == 8


def test_a_wall_clock_budget_too_small_for_one_step_is_an_error():
    cfg = TrainParams(steps=10, max_minutes=1e-9, checkpoint_every=1000)
    with pytest.raises(ValueError, match="train.max_minutes"):
        run(cfg)


def test_damaged_model_weights_are_refused_on_load(tmp_path):
    from textdiff.persist import load_model, save_model

    model = tiny_model()
    params = ar.PARAMS.model_validate({"model": {"d_model": 32, "n_layers": 2, "n_heads": 4, "seq_len": 20}})
    save_model(tmp_path, model, "ar", params.model_dump(), VOCAB)
    loaded, meta = load_model(tmp_path)
    assert meta["weights_sha256"] == json.loads((tmp_path / "model.json").read_text())["weights_sha256"]
    data = bytearray((tmp_path / "model.safetensors").read_bytes())
    data[-8:] = b"\x13" * 8  # random bytes in the last weight
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="model.safetensors is damaged"):
        load_model(tmp_path)


def test_written_files_honour_the_umask(tmp_path):
    import os

    from textdiff.io import write_text

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_a_second_run_on_a_locked_checkpoint_folder_fails_and_names_the_holder(tmp_path):
    import os

    from textdiff.errors import InputError
    from textdiff.training.checkpoint import CheckpointLock

    cfg = TrainParams(steps=4, lr=3e-3, warmup_steps=1, checkpoint_every=2, log_every=1)
    with CheckpointLock(tmp_path):
        with pytest.raises(InputError, match=f"in use by pid {os.getpid()}"):
            run(cfg, tmp_path)
    assert not list(tmp_path.glob("step_*"))  # the refused run wrote nothing
    _, result = run(cfg, tmp_path)  # released: the next run trains
    assert result.steps == 4


def test_a_model_json_from_before_rows_named_their_family(tmp_path):
    """Its ``family`` holds the row's name: that loads where the row is named after its family (ar, the judge),
    and otherwise says which row it was and to retrain it."""
    from textdiff.errors import InputError
    from textdiff.persist import load_model, save_model

    params = ar.PARAMS.model_validate({"model": {"d_model": 32, "n_layers": 2, "n_heads": 4, "seq_len": 20}})
    save_model(tmp_path, tiny_model(), "ar", params.model_dump(), VOCAB)
    meta = json.loads((tmp_path / "model.json").read_text())
    del meta["row"], meta["params"]["family"]
    (tmp_path / "model.json").write_text(json.dumps(meta))
    assert load_model(tmp_path)[1]["family"] == "ar"
    meta["family"] = "d3pm_uniform"
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="names row 'd3pm_uniform' but not its family"):
        load_model(tmp_path)


def test_textdiff_rows_lists_the_others_past_a_stale_model(tmp_path, capsys):
    from textdiff import cli
    from textdiff.persist import save_model

    params = ar.PARAMS.model_validate({"model": {"d_model": 32, "n_layers": 2, "n_heads": 4, "seq_len": 20}})
    for row in ("a_fresh", "b_stale"):
        save_model(tmp_path / "models" / row, tiny_model(), row, params.model_dump(), VOCAB)
    stale = tmp_path / "models" / "b_stale" / "model.json"
    meta = json.loads(stale.read_text())
    del meta["row"], meta["params"]["family"]
    meta["family"] = "d3pm_uniform"
    stale.write_text(json.dumps(meta))
    assert cli.main(["--root", str(tmp_path), "rows"]) == 0
    out = capsys.readouterr().out
    assert "a_fresh          ar" in out and "b_stale          stale:" in out and "names row 'd3pm_uniform'" in out
