"""Each stage's code deps in dvc.yaml, derived from its import closure (stages/code.py).

    python -m pipelines.code_deps          # exit 1 and name every stage whose listed code differs
    python -m pipelines.code_deps --write  # rewrite those lines of dvc.yaml (data deps and comments kept)

A row stage (``foreach: ${rows}``) runs its row's family module: its list holds
``textdiff/families/${item.family}.py`` and ``textdiff/params/${item.family}.py`` and, spelled out, the rest of
what any family's closure needs. A package folder whose every module the stage runs is listed as the folder.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

from stages.code import ROOT, FIRST_PARTY, import_closure
from textdiff.params import FAMILIES

DVC_YAML = ROOT / "dvc.yaml"
FAMILY_TEMPLATES = ("textdiff/families/{family}.py", "textdiff/params/{family}.py")
HEADER = "# code: python -m pipelines.code_deps"


def stage_module(cmd: str) -> str:
    match = re.search(r"-m (stages\.\w+)", cmd)
    if not match:
        raise ValueError(f"not a `bin/py -m stages.NAME` command: {cmd!r}")
    return match.group(1)


def _modules_under(folder: Path) -> set[Path]:
    return {p.relative_to(ROOT) for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts}


def compress(files: set[Path]) -> list[str]:
    """``files`` as dep paths: a package folder (below the top-level packages) whose every module is in ``files``
    is one entry, its data files included when the closure has them."""
    folders = sorted({f.parent for f in files if len(f.parts) > 2}, key=lambda d: len(d.parts))
    whole = []
    for folder in folders:
        if any(folder.is_relative_to(w) for w in whole):
            continue
        if _modules_under(folder) <= files:
            whole.append(folder)
    loose = {f for f in files if not any(f.is_relative_to(w) for w in whole)}
    return sorted([str(w) for w in whole] + [str(f) for f in loose])


def derived_deps(stage: dict) -> list[str]:
    """The code deps a stage's import closure gives (a row stage's with ``${item.family}`` for its family)."""
    module = stage_module(stage["cmd"])
    if "${key}" not in stage["cmd"]:
        return compress(import_closure(module))
    templated = {t.format(family="${item.family}") for t in FAMILY_TEMPLATES}
    rest: set[Path] = set()
    for family in FAMILIES:
        own = {Path(t.format(family=family)) for t in FAMILY_TEMPLATES}
        rest |= import_closure(module, family=family) - own
    return sorted(templated) + compress(rest)


def is_code(dep: str) -> bool:
    return dep.split("/")[0] in FIRST_PARTY


def listed_deps(stage: dict) -> list[str]:
    return sorted(d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", []) if is_code(
        d if isinstance(d, str) else next(iter(d))))


def stages_of(text: str) -> dict[str, dict]:
    """Each stage's body (a foreach stage's ``do``) by name."""
    return {name: stage.get("do", stage) for name, stage in yaml.safe_load(text)["stages"].items()}


def differences(text: str) -> dict[str, tuple[list[str], list[str]]]:
    """Stage -> (code its closure runs that dvc.yaml does not list, listed code it does not run)."""
    out = {}
    for name, stage in stages_of(text).items():
        derived, listed = set(derived_deps(stage)), set(listed_deps(stage))
        if derived != listed:
            out[name] = (sorted(derived - listed), sorted(listed - derived))
    return out


def rewrite(text: str) -> str:
    """``text`` with each stage's code deps replaced by the derived ones, at the place of the first code dep;
    the other deps and their comments stay, and a code dep that stays keeps its comment."""
    bodies = stages_of(text)
    lines = text.splitlines(keepends=True)
    out, stage, in_deps, written, comments = [], None, False, False, {}
    for line in lines:
        top = re.match(r"^  (\w+):\s*(#.*)?$", line)
        if top:
            stage, in_deps, written = top.group(1), False, False
        dep = re.match(r"^(\s+)- ([^\s:#]+)(\s+#.*)?$", line)
        if re.match(r"^\s+deps:", line):
            in_deps, indent = True, None
            comments = {}
            out.append(line)
            continue
        if in_deps and dep and is_code(dep.group(2)):
            indent = dep.group(1)
            if not written:
                keep = _comments_of(lines, stage)
                out.append(f"{indent}{HEADER}\n")
                out.extend(f"{indent}- {d}{keep.get(d, '')}\n" for d in derived_deps(bodies[stage]))
                written = True
            continue
        if in_deps and not dep and not re.match(r"^\s+#", line):
            in_deps = False
        if in_deps and line.strip() == HEADER:
            continue
        out.append(line)
    return "".join(out)


def _comments_of(lines: list[str], stage: str) -> dict[str, str]:
    """The trailing comments of the code deps listed under ``stage`` now."""
    found, inside = {}, False
    for line in lines:
        top = re.match(r"^  (\w+):\s*(#.*)?$", line)
        if top:
            inside = top.group(1) == stage
        dep = re.match(r"^\s+- ([^\s:#]+)(\s+#.*)$", line)
        if inside and dep and is_code(dep.group(1)):
            found[dep.group(1)] = dep.group(2)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite dvc.yaml's code deps")
    args = parser.parse_args(argv)
    text = DVC_YAML.read_text()
    if args.write:
        new = rewrite(text)
        DVC_YAML.write_text(new)
        left = differences(new)
        print(f"dvc.yaml: code deps of {len(stages_of(new))} stages written" if not left else f"left: {left}")
        return 1 if left else 0
    diff = differences(text)
    for name, (missing, extra) in diff.items():
        print(f"{name}: runs but does not list {missing or 'nothing'}; lists but does not run {extra or 'nothing'}")
    if diff:
        print("python -m pipelines.code_deps --write rewrites them")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
