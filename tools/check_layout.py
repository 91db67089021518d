#!/usr/bin/env python3
"""The library's layout rules, checked on src/ (CI runs this; it reads files, changes nothing):

- no import cycle among the library's modules (a `use crate::..`/`super::..` of one file by
  another; a folder's mod.rs and its own files may refer to each other);
- format/ does no I/O (no files, maps or readers: it works on byte slices);
- interop/ never touches a store (no Archive, Writer or reader);
- no file over 800 lines and no function over 80 (unit-test modules not counted).

Exit 1 with one line per broken rule.
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
MAX_FILE, MAX_FN = 800, 80


def library_files():
    for d, _, fs in os.walk(ROOT):
        if os.sep + "bin" in d:
            continue
        for f in sorted(fs):
            if f.endswith(".rs"):
                yield os.path.join(d, f)


def module_of(path):
    parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


def code(text):
    """The text before the unit tests, without comments."""
    text = re.split(r"#\[cfg\(test\)\]\s*(?:pub(?:\(crate\))?\s+)?mod tests", text)[0]
    return re.sub(r"//.*", "", text)


def imports(mod, is_mod_rs, text, modules):
    def resolve(path):
        for n in range(len(path), 0, -1):
            if tuple(path[:n]) in modules:
                return tuple(path[:n])
        return None

    found = set()
    for m in re.finditer(r"\b(crate|super)((?:::\w+)+)", text):
        parts = m.group(2).split("::")[1:]
        base = list(mod[:-1])
        path = parts if m.group(1) == "crate" else base + parts
        target = resolve(path)
        if target and target != mod:
            found.add(target)
    # `use child::..` from a mod.rs
    if is_mod_rs:
        for m in re.finditer(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use (\w+)::", text, re.M):
            target = resolve(list(mod) + [m.group(1)])
            if target and target != mod:
                found.add(target)
    return found


def cycles(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def long_functions(path, lines):
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"\s*#\[cfg\(test\)\]", line):
            return
        m = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:unsafe\s+)?fn\s+(\w+)", line)
        if m and not line.rstrip().endswith(";"):
            depth, started, j = 0, False, i
            while j < len(lines):
                for ch in lines[j]:
                    if ch == "{":
                        depth, started = depth + 1, True
                    elif ch == "}":
                        depth -= 1
                if started and depth == 0:
                    break
                j += 1
            if j - i + 1 > MAX_FN:
                yield f"{path}:{i + 1}: fn {m.group(1)} is {j - i + 1} lines (at most {MAX_FN})"
            i = j + 1
            continue
        i += 1


def main():
    files = list(library_files())
    modules = {module_of(f): f for f in files}
    problems = []
    graph = {}
    for mod, path in modules.items():
        text = open(path, encoding="utf-8").read()
        rel = os.path.relpath(path, os.path.join(ROOT, ".."))
        body = code(text)
        for target in imports(mod, path.endswith("mod.rs"), body, modules):
            parent_child = target == mod[:-1] or mod == target[:-1]
            if not parent_child:
                graph.setdefault(mod, set()).add(target)
        if mod[:1] == ("format",) and re.search(r"std::fs|std::io::(Read|Write)|\bFile\b|Mmap", body):
            problems.append(f"{rel}: format/ does I/O")
        if mod[:1] == ("interop",) and re.search(r"\b(Archive|Writer|ArchiveReader|ReadObject)\b", body):
            problems.append(f"{rel}: interop/ refers to the store")
        lines = text.split("\n")
        code_lines = len(re.split(r"#\[cfg\(test\)\]\s*(?:pub(?:\(crate\))?\s+)?mod tests", text)[0].split("\n"))
        if code_lines > MAX_FILE:
            problems.append(f"{rel}: {code_lines} lines before its tests (at most {MAX_FILE})")
        problems.extend(long_functions(rel, lines))
    for comp in cycles(graph):
        names = " -> ".join("/".join(m) or "lib" for m in comp)
        problems.append(f"import cycle: {names}")
    for p in problems:
        print(p)
    print(f"layout: {len(modules)} modules, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
