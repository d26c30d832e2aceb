"""code: the code each stage runs, derived from its import closure, as one digest file per stage.

A stage's code is every repository module its module imports, anywhere in the file (function-level imports
too), followed to the end, with the packages they sit in, the family module ``get_family`` loads by name, and
the data files a module names beside itself (``claims.yaml``). This stage (deps: all of ``stages/`` and
``textdiff/``) writes ``data/code/STAGE.json`` and, per family, ``data/code/STAGE/FAMILY.json``: each file's
SHA-256. Every other stage's code dep in dvc.yaml is its digest file and nothing else (a test checks it for
every stage), so a stage re-runs exactly when code it runs changes, and no hand-written list can miss a module.
One digest file a stage keeps DVC's bookkeeping small: listing the ~40 files of a stage's closure as deps made
`dvc status` and every warm stage slower (8-10 s against 6-7 s for the tiny profile's 70 stages).

    python -m stages.code --show train mdlm    # the files train@ROW runs for a row of family mdlm

The training stages fingerprint their checkpoints with the same files, so a code change that makes DVC re-run a
stage also stops it from resuming the old run's checkpoint.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import shutil
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("stages", "textdiff")
# Imports by name, each loading the row's family: a file in the closure that calls ``get_family`` runs
# textdiff/families/<family>.py; textdiff/params/reading.py (a row's params) imports textdiff/params/<family>.py.
CALLS_BY_NAME = {"get_family": "textdiff.families.{family}"}
FILES_BY_NAME = {"textdiff/params/reading.py": "textdiff.params.{family}"}


def module_file(module: str) -> Path | None:
    """The repository file of a dotted module name (relative to the root), or None outside the repository."""
    if module.split(".")[0] not in FIRST_PARTY:
        return None
    base = Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if (ROOT / candidate).is_file():
            return candidate
    return None


@lru_cache(maxsize=None)
def _direct(path: Path) -> tuple[tuple[str, ...], tuple[Path, ...], frozenset[str]]:
    """The modules one file imports (a ``from pkg import name`` counts ``pkg.name`` in case it is a module), the
    files beside it that it names in a string literal and the ``CALLS_BY_NAME`` it calls."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), str(path))
    package = ".".join(path.parent.parts)  # what a relative import starts from, for a module and a package alike
    modules, literals, calls = set(), set(), set()
    lazy = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"]
    skipped = {id(n) for f in lazy for n in ast.walk(f)}  # a package's __getattr__ imports on attribute access
    for node in ast.walk(tree):                            # only (textdiff.load), which no stage makes
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            modules.add(source)
            modules.update(f"{source}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            literals.add(node.value)
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in CALLS_BY_NAME:
                calls.add(name)
    siblings = tuple(sorted(f.relative_to(ROOT) for f in (ROOT / path).parent.iterdir()
                            if f.is_file() and f.suffix != ".py" and f.name in literals))
    return tuple(sorted(modules)), siblings, frozenset(calls)


def _with_packages(path: Path) -> list[Path]:
    """``path`` and the ``__init__.py`` of every package above it (Python runs them on import)."""
    out = [path]
    parent = path.parent
    while parent != Path(".") and (ROOT / parent / "__init__.py").is_file():
        out.append(parent / "__init__.py")
        parent = parent.parent
    return out


def import_closure(*modules: str, family: str | None = None) -> set[Path]:
    """Every repository file that importing ``modules`` runs, by relative path. ``family``: the family that an
    import by name (``CALLS_BY_NAME``, ``FILES_BY_NAME``) loads; without one those imports are not followed."""
    seen: set[Path] = set()
    todo = [f for m in modules if (f := module_file(m)) is not None]
    while todo:
        for path in _with_packages(todo.pop()):
            if path in seen:
                continue
            seen.add(path)
            imported, siblings, calls = _direct(path)
            seen.update(siblings)
            todo.extend(f for m in imported if (f := module_file(m)) is not None)
            if family is not None:
                by_name = [CALLS_BY_NAME[c] for c in calls] + [FILES_BY_NAME.get(str(path))]
                todo.extend(module_file(p.format(family=family)) for p in by_name if p)
    return seen


def stage_code(module: str, family: str | None = None) -> list[Path]:
    """The sorted code files of the stage run as ``python -m module`` (for a row stage, with its row's family)."""
    return sorted(import_closure(module, family=family))


def training_code(stage: str, family: str | None = None) -> list[Path]:
    """What a training stage fingerprints its checkpoints with: the code of ``stages.<stage>`` for ``family``."""
    return stage_code(f"stages.{stage}", family)


DIGESTS = Path("data/code")


def stage_modules() -> list[str]:
    """The stage modules: every stages/NAME.py that runs as ``python -m stages.NAME`` (this one depends on the
    folders whole)."""
    return sorted(f.stem for f in (ROOT / "stages").glob("*.py")
                  if f.stem != "code" and 'if __name__ == "__main__":' in f.read_text())


def digest_path(stage: str, family: str | None = None) -> Path:
    """Where the code stage writes the digest of ``stages.<stage>`` (for a row of ``family``)."""
    return DIGESTS / (f"{stage}/{family}.json" if family else f"{stage}.json")


def code_record(stage: str, family: str | None = None) -> dict:
    files = stage_code(f"stages.{stage}", family)
    return {"stage": stage, "family": family,
            "files": {str(f): hashlib.sha256((ROOT / f).read_bytes()).hexdigest() for f in files}}


def main() -> None:
    from textdiff.io import write_json
    from textdiff.params import FAMILIES

    if DIGESTS.exists():
        shutil.rmtree(DIGESTS)
    stages = stage_modules()
    for stage in stages:
        write_json(digest_path(stage), code_record(stage))
        for family in FAMILIES:
            write_json(digest_path(stage, family), code_record(stage, family))
    print(f"[code] the code of {len(stages)} stages, per family too, in {DIGESTS}/", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--show", nargs="+", metavar=("STAGE", "FAMILY"), help="print the files a stage runs")
    args = parser.parse_args()
    if args.show:
        print("\n".join(str(f) for f in stage_code(f"stages.{args.show[0]}", *args.show[1:2])))
    else:
        main()
