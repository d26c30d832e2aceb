import json

import pytest

from textdiff.io import atomic_path, read_jsonl, write_json
from textdiff.tracking import Tracker


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"v": 2, "half')
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_read_jsonl_names_the_bad_line(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match=r"x.jsonl:2"):
        read_jsonl(f)


def test_wandb_offline_run_writes_locally(tmp_path):
    tracker = Tracker("unit", {"lr": 0.1}, mode="offline", folder=tmp_path)
    tracker.log({"train/loss": 1.5}, step=1)
    tracker.summary({"final": 1.0})
    tracker.finish()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))
