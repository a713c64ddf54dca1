#!/usr/bin/env python3
"""Lists functions longer than N lines (default 80) in the given Rust files or directories.

A function's length is counted from its `fn` line to its closing brace, as a reader sees it.
Strings, chars and comments are skipped when matching braces. Usage: fn-sizes.py [-n 80] src
"""
import os, re, sys

def strip(src):
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i); j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2); j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in src[i:j])); i = j
        elif c == 'r' and re.match(r'r#*"', src[i:i+10]) and (i == 0 or not (src[i-1].isalnum() or src[i-1] == '_')):
            m = re.match(r'r(#*)"', src[i:]); hashes = m.group(1)
            end = src.find('"' + hashes, i + len(m.group(0)))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append("".join(ch if ch == "\n" else " " for ch in src[i:end])); i = end
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j += 1
            out.append("".join(ch if ch == "\n" else " " for ch in src[i:j])); i = j
        elif c == "'" and re.match(r"'(\\.[^']*|[^\\'])'", src[i:i+12]):
            m = re.match(r"'(\\.[^']*|[^\\'])'", src[i:i+12])
            out.append(" " * len(m.group(0))); i += len(m.group(0))
        else:
            out.append(c); i += 1
    return "".join(out)

def functions(path):
    text = strip(open(path, encoding="utf-8").read())
    for m in re.finditer(r'\bfn\s+([A-Za-z_][A-Za-z0-9_]*)', text):
        start = m.start()
        # find the body's opening brace (skip a `;` declaration)
        j = start; depth_paren = 0
        while j < len(text) and text[j] not in "{;":
            j += 1
        if j >= len(text) or text[j] == ";":
            continue
        depth, k = 0, j
        while k < len(text):
            if text[k] == "{": depth += 1
            elif text[k] == "}":
                depth -= 1
                if depth == 0: break
            k += 1
        first = text.count("\n", 0, start) + 1
        last = text.count("\n", 0, k) + 1
        yield m.group(1), first, last - first + 1

def main(argv):
    limit = 80
    if len(argv) > 1 and argv[0] == "-n":
        limit = int(argv[1]); argv = argv[2:]
    files = []
    for a in argv or ["src"]:
        if os.path.isdir(a):
            for root, _, names in os.walk(a):
                files += [os.path.join(root, f) for f in names if f.endswith(".rs")]
        else:
            files.append(a)
    rows = []
    for f in sorted(files):
        for name, line, size in functions(f):
            if size > limit:
                rows.append((size, f"{f}:{line}", name))
    for size, where, name in sorted(rows, reverse=True):
        print(f"{size:5} {name:32} {where}")
    print(f"{len(rows)} functions longer than {limit} lines")

main(sys.argv[1:])
