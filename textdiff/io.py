"""Atomic file writes and small readers.

Every output is written to a temporary file in the same folder, flushed to disk
(fsync of the file, then of the folder after the rename) and renamed into place,
so a killed stage or a power cut leaves the previous file or none, never half a
file. Files get the mode the umask gives (as DVC's restore does), not mkstemp's 0600.
A write the disk refuses (full, over quota or a file-size limit) is one InputError
that names the file, with the temporary file removed and the previous file kept.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from textdiff.errors import InputError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())
        fsync_file(tmp_path)
        os.replace(tmp_path, path)
        fsync_dir(path.parent)
    except Exception as err:
        if not write_refused(err):
            raise
        raise write_failed(path, err, f"{path.name} as it was before is unchanged") from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


REFUSED_WRITES = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}  # full, quota, size, read-only


def write_refused(err: BaseException) -> bool:
    """Whether an error is the disk refusing a write (``REFUSED_WRITES``): an OSError with one of those codes, or
    the same seen through a library: safetensors' Rust I/O error ("... (os error 28)"), torch.save's ("file write
    failed", or "unexpected pos" when a file-size limit cut the write short). Any other error keeps its traceback."""
    if isinstance(err, OSError):
        return err.errno in REFUSED_WRITES
    text = str(err)
    code = re.search(r"\(os error (\d+)\)", text)
    if code:
        return int(code[1]) in REFUSED_WRITES
    return isinstance(err, RuntimeError) and ("file write failed" in text or "unexpected pos" in text)


def write_failed(target: Path, err: BaseException, what_survives: str) -> InputError:
    """One line for a write the disk refused: the file, the system's reason, what to do and what is kept."""
    reason = str(err).splitlines()[0][:200] if str(err) else ""
    return InputError(f"could not write {target} ({type(err).__name__}: {reason}); nothing of it was kept. If the "
                      f"disk is full, free space on it and re-run the stage: {what_survives}")


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_file(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    """Make a rename inside ``path`` durable (no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path: str | Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{line_no}: not valid JSON ({err.msg})") from None
    return rows


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")
