"""The ``textdiff`` command: sample, infill, guide and list the trained rows of a checkout (textdiff.api).

    textdiff rows
    textdiff sample mdlm -n 5
    textdiff infill mdlm "the film is ___ ."
    textdiff control embedding --label fresh -n 3

ROW is a row's name (its folder ``models/ROW`` under ``--root``, the current folder by default) or the
path of a model folder. Texts go to stdout, one per line; progress and errors to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

EPILOG = """examples:
  textdiff rows                                   what is trained here, with its headline numbers
  textdiff sample mdlm -n 5 --steps 64            five samples from models/mdlm
  textdiff infill mdlm "the film is ___ ."        fill the blank (3 tokens; --blank-tokens to change)
  textdiff control embedding --label fresh -n 3   samples guided toward the label 'fresh'
"""


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from textdiff.errors import InputError

    try:
        return args.run(args)
    except (InputError, FileNotFoundError) as err:
        print(f"textdiff {args.command}: error: {err}", file=sys.stderr)
        return 2


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="textdiff", description="Use the text diffusion models this checkout trained.",
                                  epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--root", default=".", help="the checkout whose models/ to read (default: the current folder)")
    top.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rows = sub.add_parser("rows", help="list the trained rows and their headline metrics")
    rows.set_defaults(run=run_rows)

    sample = sub.add_parser("sample", help="sample texts from a row")
    _row_args(sample)
    sample.add_argument("-n", "--num", type=int, default=5, help="how many texts (default 5)")
    sample.add_argument("--steps", type=int, help="reverse steps (default: the row's sample.steps)")
    sample.set_defaults(run=run_sample)

    infill = sub.add_parser("infill", help="fill the ___ blanks of a template, keeping its other tokens")
    _row_args(infill)
    infill.add_argument("template", help='text with ___ where tokens go, e.g. "the film is ___ and ___ ."')
    infill.add_argument("-n", "--num", type=int, default=1, help="how many fills (default 1)")
    infill.add_argument("--blank-tokens", type=int, default=3, help="tokens per blank (default 3)")
    infill.add_argument("--steps", type=int, help="reverse steps (default: the row's sample.steps)")
    infill.set_defaults(run=run_infill)

    control = sub.add_parser("control", help="sample texts guided toward a label by the attribute classifier")
    _row_args(control)
    control.add_argument("--label", required=True, help="the label to steer toward (e.g. fresh or rotten)")
    control.add_argument("-n", "--num", type=int, default=5, help="how many texts (default 5)")
    control.add_argument("--strength", type=float, help="guidance strength (default: params control.strength)")
    control.add_argument("--steps", type=int, help="reverse steps (default: the row's sample.steps)")
    control.set_defaults(run=run_control)
    return top


def _row_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("row", help="a row name (models/ROW) or a model folder")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


# --------------------------------------------------------------------------- commands


def run_rows(args) -> int:
    from textdiff.errors import InputError
    from textdiff.persist import model_family

    root = Path(args.root)
    folders = sorted(f for f in (root / "models").glob("*") if (f / "model.json").exists())
    if not folders:
        print(f"no trained rows under {root / 'models'} (run `make repro`, or `dvc repro` for some rows)",
              file=sys.stderr)
        return 1
    print(f"{'row':16} {'family':10} {'mauve':>7} {'gen_ppl':>8} {'ppl':>8}  infill / control")
    for folder in folders:
        meta = json.loads((folder / "model.json").read_text())
        summary = _read(root / "summary" / f"{folder.name}.json")
        try:
            family = model_family(meta, folder)
        except InputError as err:  # saved before rows named their family: the others still list
            print(f"{folder.name:16} stale: {err}")
            continue
        print(f"{folder.name:16} {family:10} {_num(summary.get('mauve'), 3):>7} {_num(summary.get('gen_ppl'), 1):>8} "
              f"{_num(summary.get('ppl'), 1):>8}  {_abilities(family)}")
    return 0


def run_sample(args) -> int:
    model = _load(args)
    with _progress(f"sampling {args.num} from {model.row}"):
        texts = model.sample(args.num, steps=args.steps, seed=args.seed)
    _print(texts)
    return 0


def run_infill(args) -> int:
    model = _load(args)
    with _progress(f"filling {args.num} × {model.row}"):
        texts = model.infill(args.template, n=args.num, blank_tokens=args.blank_tokens, steps=args.steps,
                             seed=args.seed)
    _print(texts)
    return 0


def run_control(args) -> int:
    model = _load(args)
    strength = args.strength if args.strength is not None else _params_strength(Path(args.root))
    with _progress(f"sampling {args.num} from {model.row} toward {args.label!r} at strength {strength}"):
        texts = model.guide(args.label, n=args.num, strength=strength, steps=args.steps, seed=args.seed)
    _print(texts)
    return 0


# --------------------------------------------------------------------------- helpers


def _load(args):
    from textdiff.api import load
    from textdiff.errors import InputError

    path = Path(args.row)
    folder = path if (path / "model.json").exists() else Path(args.root) / "models" / args.row
    if not (folder / "model.json").exists():
        trained = sorted(f.name for f in (Path(args.root) / "models").glob("*") if (f / "model.json").exists())
        raise InputError(f"no trained row {args.row!r} (no {folder / 'model.json'}); trained here: "
                         f"{', '.join(trained) or 'none (run make repro)'}")
    with _progress(f"loading {folder}"):
        return load(folder, args.device)


def _params_strength(root: Path) -> float:
    from textdiff.api import DEFAULT_STRENGTH

    try:
        from textdiff.config import load_params

        return load_params(root / "params.yaml").control.strength
    except Exception:  # noqa: BLE001 - no or other params here: the schema's default
        return DEFAULT_STRENGTH


class _progress:
    """``… ``, then the seconds it took, on stderr (so stdout holds only the texts)."""

    def __init__(self, what: str):
        self.what = what

    def __enter__(self):
        print(f"[textdiff] {self.what} …", file=sys.stderr, flush=True)
        self.t0 = time.perf_counter()

    def __exit__(self, kind, *_):
        if kind is None:
            print(f"[textdiff] done in {time.perf_counter() - self.t0:.1f}s", file=sys.stderr, flush=True)


def _print(texts: list[str]) -> None:
    for text in texts:
        print(text.replace("\n", " "))


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _num(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _abilities(family_name: str) -> str:
    from textdiff.families import get_family

    family = get_family(family_name)
    return "/".join("yes" if getattr(family, key) is None else "no" for key in ("CANNOT_INFILL", "CANNOT_GUIDE"))


if __name__ == "__main__":
    sys.exit(main())
