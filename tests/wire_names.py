#!/usr/bin/python3
"""Every wire name is spelled once: in proto/names.c's string tables.

Reads the names from the tables, then looks for the same names as string
literals in the C sources of the daemon, the library, portctl, the codec
and the benchmark, and fails on each one found (a "stray"): such code
must look the name up (proto_*_to_string, portd_*_name) instead.

Not strays: a literal in a key position (a call's second or later
argument, "ttl" in proto_request_add(o, "ttl", ...)), the first cell of a
table row ({"lease", cmd_lease, ...}, a command or option name), comments,
the request codec's table of field names, and a line marked with the
comment "not wire names" (a literal that only looks like one, such as
the metrics' end reasons). The tests are not scanned: they spell the
names to check them, and neither is the benchmark, which speaks the
protocol with a minimal client of its own on purpose.

usage: wire_names.py SOURCE_DIR
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
tables = (root / "proto" / "names.c").read_text()
names = set(re.findall(r'^\s*\[[A-Z0-9_]+\] = "([^"]+)",$', tables, re.M))
if len(names) < 20:
    sys.exit("wire_names: found only %d names in proto/names.c" % len(names))

literal = re.compile(r'"(%s)"' % "|".join(sorted(map(re.escape, names))))
# (x, "key" / (a->b, "key" / , rc, "what": a later argument of a call.
key_position = r'[(,][^(),"]*(?:\([^()]*\))?\s*,\s*$'
row_start = r'\{\s*$'


def strip_comments(text):
    """Blank out comments, keeping line numbers."""
    def blank(m):
        return re.sub(r'[^\n]', ' ', m.group(0))
    return re.sub(r'/\*.*?\*/|//[^\n]*', blank, text, flags=re.S)


def field_tables(text):
    """Line spans of the codec's tables of field names (op_fields)."""
    spans = []
    for m in re.finditer(r'op_fields\[[^\n]*\{\n.*?\n\};', text, re.S):
        first = text.count("\n", 0, m.start()) + 1
        spans.append((first, first + m.group(0).count("\n")))
    return spans


strays = []
dirs = ["daemon", "client", "proto"]
for path in sorted(p for d in dirs for p in (root / d).rglob("*.[ch]")):
    rel = path.relative_to(root)
    if rel == pathlib.Path("proto/names.c"):
        continue
    raw = path.read_text().split("\n")
    text = strip_comments("\n".join(raw))
    skip = field_tables(text)
    prev = ""
    for n, line in enumerate(text.split("\n"), 1):
        cont = prev.rstrip().endswith(",")
        if line.strip():
            prev = line
        if any(a <= n <= b for a, b in skip) or "not wire names" in raw[n - 1]:
            continue
        for m in literal.finditer(line):
            before = line[:m.start()]
            if (re.search(key_position, before) or re.search(row_start, before)
                    or (cont and not before.strip())):
                continue
            strays.append("%s:%d: %s" % (rel, n, line.strip()))

for s in strays:
    print("wire name spelled outside proto/names.c: " + s)
if strays:
    sys.exit(1)
print("ok: %d wire names, each spelled only in proto/names.c" % len(names))
