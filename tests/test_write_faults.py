"""Writes the disk refuses, for real: a child process under a file-size limit (RLIMIT_FSIZE, with SIGXFSZ
ignored, so a write past it fails with EFBIG as a full disk fails with ENOSPC). Each is one line naming the
file and what to do, with no temporary file left and the previous output intact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = """
import resource, signal, sys, torch
sys.path.insert(0, {root!r})
from textdiff.data.vocab import Vocab
from textdiff.families import ar
model = ar.build(ar.PARAMS.model_validate({{"model": {{"d_model": 64, "n_layers": 2, "n_heads": 4, "seq_len": 20}}}}),
                 Vocab(500, 0, 1, 2, 4))
def limit_writes(size):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
"""


def child(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "child.py"
    script.write_text(PRELUDE.format(root=str(ROOT)) + body)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})


def one_error_line(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 3, out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, out.stdout + out.stderr
    return lines[0]


CATCH = """
from textdiff.errors import InputError
try:
    {call}
except InputError as err:
    print("error:", err)
    sys.exit(3)
"""


def test_a_checkpoint_the_disk_refuses_leaves_no_temporary_folder_and_the_older_one_whole(tmp_path):
    body = """
from textdiff.training.checkpoint import load_checkpoint, save_checkpoint
opt = torch.optim.AdamW(model.parameters())
save_checkpoint(__import__("pathlib").Path("ckpt"), 4, model, opt, {}, "key")
limit_writes(20_000)
""" + CATCH.format(call='save_checkpoint(__import__("pathlib").Path("ckpt"), 8, model, opt, {}, "key")')
    line = one_error_line(child(tmp_path, body))
    assert "could not write ckpt/step_0000008" in line and "free space" in line and "resumes from" in line
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["latest", "step_0000004"]
    check = child(tmp_path, """
from textdiff.training.checkpoint import load_checkpoint
opt = torch.optim.AdamW(model.parameters())
print(load_checkpoint(__import__("pathlib").Path("ckpt"), model, opt, "key")["step"])
""")
    assert check.returncode == 0 and check.stdout.strip() == "4", check.stderr[-2000:]


def test_a_model_the_disk_refuses_keeps_the_old_model_loadable(tmp_path):
    save = ('save_model("models/ar", model, "ar", ar.PARAMS.model_validate({"model": {"d_model": 64, "n_layers": 2, '
            '"n_heads": 4, "seq_len": 20}}).model_dump(), Vocab(500, 0, 1, 2, 4))')
    body = "from textdiff.persist import save_model\n" + save + "\nlimit_writes(20_000)\n" + CATCH.format(call=save)
    line = one_error_line(child(tmp_path, body))
    assert "could not write models/ar" in line and "free space" in line and "unchanged" in line
    assert sorted(p.name for p in (tmp_path / "models" / "ar").iterdir()) == ["model.json", "model.safetensors"]
    check = child(tmp_path, "from textdiff.persist import load_model\nprint(load_model('models/ar')[1]['row'])\n")
    assert check.returncode == 0 and check.stdout.strip() == "ar", check.stderr[-2000:]


@pytest.mark.parametrize("writer", ["write_json", "save_file"])
def test_an_atomic_write_the_disk_refuses_is_one_line_naming_the_file(tmp_path, writer):
    call = {"write_json": 'write_json("out.json", {"x": "y" * 100_000})',
            "save_file": "with atomic_path('out.safetensors') as tmp:\n        "
                         "save_file({'w': torch.zeros(100_000)}, str(tmp))"}[writer]
    name = "out.json" if writer == "write_json" else "out.safetensors"
    (tmp_path / name).write_text("before")
    body = "from safetensors.torch import save_file\nfrom textdiff.io import atomic_path, write_json\n" \
        "limit_writes(20_000)\n" + CATCH.format(call=call)
    line = one_error_line(child(tmp_path, body))
    assert line.startswith(f"error: could not write {name} (") and "free space" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child.py", name]
    assert (tmp_path / name).read_text() == "before"
