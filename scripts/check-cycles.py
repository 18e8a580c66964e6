#!/usr/bin/env python3
"""No import circles (#13): fails if workspace crates depend on each other in a cycle
(dev-dependencies included, which cargo allows), or if a crate's source files do.

A file depends on another when it names it: `crate::a::b` paths and `use super::x` /
`super::x::` paths are resolved to the module file they reach (tests excluded: files
named tests.rs or *_tests.rs, and `#[cfg(test)]` inline modules are ignored). Prints each
cycle with its files; exit 1 if there is one.
"""
import json, os, re, subprocess, sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def crate_cycles():
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT))
    names = {p["name"] for p in meta["packages"]}
    graph = {p["name"]: sorted({d["name"] for d in p["dependencies"] if d["name"] in names})
             for p in meta["packages"]}
    return [c for c in sccs(graph) if len(c) > 1]

def sccs(graph):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            out.append(sorted(comp))
    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return out

def module_files(src):
    """module path (tuple) -> file, for every .rs file under src."""
    mods = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            mods[tuple(rel)] = os.path.join(dirpath, f)
    return mods

def strip_tests(text):
    # Drop `#[cfg(test)] mod x { ... }` blocks (brace matching) and line comments.
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0); j += 1
        i = j
    out.append(text[i:])
    return "".join(out)

def expand_use(spec):
    """`a::{b, c::d as e}` -> [(name, [a, b]), (e, [a, c, d])] (one level of braces)."""
    spec = re.sub(r"\s+", "", spec)
    m = re.match(r"^(.*?)::\{(.*)\}$", spec)
    items = [(m.group(1) + "::" + x) for x in m.group(2).split(",") if x] if m else [spec]
    out = []
    for it in items:
        path, _, alias = it.partition("as")
        segs = path.split("::")
        out.append((alias or segs[-1], segs))
    return out

def absolute(mods, here, segs):
    """A `use` path as a module path from the crate root, or None if external."""
    if segs[0] == "crate":
        return segs[1:]
    if segs[0] == "self":
        return here + segs[1:]
    if segs[0] == "super":
        return here[:-1] + segs[1:]
    if tuple(here + segs[:1]) in mods:
        return here + segs
    return None

REEXPORTS = {}

# Circles that predate this check, outside the crates #13 split: each must shrink, never
# grow; a new circle anywhere fails. (config: files.rs needs load.rs's Layer and load.rs
# needs files.rs's readers; testbed: error.rs aggregates subsystem errors that return it.)
KNOWN = {
    "config": {"config/src/files.rs", "config/src/flags.rs", "config/src/load.rs"},
    "testbed": {"testbed/src/error.rs", "testbed/src/preflight.rs",
                "testbed/src/scenario/mod.rs", "testbed/src/wait.rs",
                "testbed/src/wan/control.rs", "testbed/src/wan/router.rs"},
}

def resolve(mods, path, depth=0):
    """The file `path` reaches: its longest module prefix, through that module's
    re-exports (`pub use`) when the rest of the path names one."""
    for k in range(len(path), 0, -1):
        mod = tuple(path[:k])
        if mod in mods:
            if k < len(path) and depth < 8:
                target = REEXPORTS.get(mod, {}).get(path[k])
                if target is not None:
                    return resolve(mods, target + path[k + 1:], depth + 1) or mod
            return mod
    return None

def file_cycles(crate_dir):
    src = os.path.join(crate_dir, "src")
    mods = module_files(src)
    REEXPORTS.clear()
    for mod, path in mods.items():
        text = re.sub(r"//[^\n]*", "", open(path, encoding="utf-8").read())
        table = {}
        for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", text):
            for name, segs in expand_use(m.group(1)):
                target = absolute(mods, list(mod), segs)
                if target is not None:
                    table[name] = target
        REEXPORTS[mod] = table
    graph = defaultdict(set)
    for mod, path in mods.items():
        name = os.path.basename(path)
        if name == "tests.rs" or name.endswith("_tests.rs") or "tests" in mod:
            continue
        text = strip_tests(open(path, encoding="utf-8").read())
        here = list(mod)
        refs = []
        for m in re.finditer(r"\buse\s+([^;]+);", text):
            for _, segs in expand_use(m.group(1)):
                target = absolute(mods, here, segs)
                if target is not None:
                    refs.append(target)
        # Paths written inline (`crate::a::f()`, `super::x::Y`), outside `use`.
        inline = re.sub(r"\buse\s+[^;]+;", "", text)
        for m in re.finditer(r"\b(crate|super)((?:::\w+)+)", inline):
            segs = [m.group(1)] + m.group(2).split("::")[1:]
            refs.append(absolute(mods, here, segs))
        for r in refs:
            target = resolve(mods, r)
            if target is not None and target != mod and target != tuple(here[:len(target)]):
                graph[mod].add(target)
    return [[mods[m] for m in c] for c in sccs(graph) if len(c) > 1]

def main():
    bad = False
    for c in crate_cycles():
        bad = True
        print("crate cycle:", " -> ".join(c))
    for d in sorted(os.listdir(ROOT)):
        if os.path.isfile(os.path.join(ROOT, d, "Cargo.toml")) and os.path.isdir(os.path.join(ROOT, d, "src")):
            for c in file_cycles(os.path.join(ROOT, d)):
                files = {os.path.relpath(f, ROOT) for f in c}
                if files <= KNOWN.get(d, set()):
                    print(f"known circle in {d} (to break):", " <-> ".join(sorted(files)))
                    continue
                bad = True
                print(f"import circle in {d}:", " <-> ".join(sorted(files)))
    if bad:
        sys.exit(1)
    print("no crate cycles, no new import circles")

main()
