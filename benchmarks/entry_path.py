"""Not speed: the entry path of `magic train`, counted by reading the source.

Start at cli/training.py's `train` command; read each package function it calls, in source order,
then each package function those call, to DEPTH calls from the entry (each function read once;
go-to-definition through re-exports; a class call reads its `__init__`; calls on objects, like
`run.step`, are not followed). A move: the reading position changes module (into a callee's module,
or back to the caller's module to read its next call). A climb back: a move to a module already
passed. Prints the counts and the path.

Run: `python benchmarks/entry_path.py [--root DIR] [--depth 2]` (DIR: a checkout holding magic_rl/,
default this one; e.g. a `git archive` of an older commit to compare).
"""

import argparse
import ast
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
ap.add_argument("--depth", type=int, default=2)
args = ap.parse_args()
ROOT, DEPTH = args.root, args.depth
_cache = {}


def source(mod):
    base = ROOT / mod.replace(".", "/")
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def parse(mod):
    if mod not in _cache:
        p = source(mod)
        _cache[mod] = ast.parse(p.read_text()) if p else None
    return _cache[mod]


def imports_of(nodes, mod):
    """name -> (module, attr or None) for package imports among `nodes`."""
    out = {}
    pkg = mod if source(mod) and source(mod).name == "__init__.py" else mod.rsplit(".", 1)[0]
    for n in nodes:
        if isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - n.level + 1] + ([base] if base else []))
            if not base.startswith("magic_rl"):
                continue
            for a in n.names:
                full = f"{base}.{a.name}"
                out[a.asname or a.name] = (full, None) if source(full) else (base, a.name)
        elif isinstance(n, ast.Import):
            for a in n.names:
                if a.name.startswith("magic_rl"):
                    out[a.asname or a.name.split(".")[0]] = (a.name, None)
    return out


def definition(mod, name, seen=()):
    """(module, def node) where `name` of `mod` is defined (through re-exports)."""
    tree = parse(mod)
    if tree is None or (mod, name) in seen:
        return None
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name:
            return mod, n
    imp = imports_of(tree.body, mod)
    if name in imp and imp[name][1] is not None:
        return definition(imp[name][0], imp[name][1], (*seen, (mod, name)))
    return None


def calls(mod, fn):
    """The package functions `fn` (of `mod`) calls, in source order: (module, def node)."""
    tree = parse(mod)
    top = imports_of(tree.body, mod)
    local = imports_of(
        [n for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))], mod
    )
    names = {**top, **local}
    found = []
    for n in sorted(
        (n for n in ast.walk(fn) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset)
    ):
        f = n.func
        target = None
        if isinstance(f, ast.Name):
            if f.id in names:
                m, a = names[f.id]
                target = definition(m, a) if a else None
            else:
                target = definition(mod, f.id)
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in names:
            m, a = names[f.value.id]
            if a is None:
                target = definition(m, f.attr)
        if target:
            tm, node = target
            if isinstance(node, ast.ClassDef):
                init = next(
                    (
                        b
                        for b in node.body
                        if isinstance(b, ast.FunctionDef) and b.name == "__init__"
                    ),
                    None,
                )
                if init is None:
                    continue
                node = init
            found.append((tm, node))
    return found


read = set()
path = []


def visit(mod, fn, depth):
    key = (mod, fn.lineno, fn.name)
    if key in read:
        return
    read.add(key)
    if not path or path[-1] != mod:
        path.append(mod)
    if depth == DEPTH:
        return
    for cm, cfn in calls(mod, fn):
        if (cm, cfn.lineno, cfn.name) in read:
            continue
        if path[-1] != mod:
            path.append(mod)  # back to the caller to read its next call
        visit(cm, cfn, depth + 1)


entry = definition("magic_rl.cli.training", "train")
visit(*entry, 0)
passed, moves, climbs = set(), 0, 0
for k, m in enumerate(path):
    if k:
        moves += 1
        climbs += m in passed
    passed.add(m)
print(f"depth {DEPTH}: {len(passed)} modules, {moves} moves, {climbs} climbs back")
print(" -> ".join(m.removeprefix("magic_rl.") for m in path))
