#!/usr/bin/env python3
"""Prints the README's configuration table from the binaries' own --help, so
the table cannot drift from the options the programs accept.

Usage: scripts/config-table.py [target/debug]
"""
import re
import subprocess
import sys

bindir = sys.argv[1] if len(sys.argv) > 1 else "target/debug"
COMMANDS = [
    ("thumbfarm-api", ["serve"]),
    ("thumbfarm", ["serve"]),
    ("thumbfarm-api", ["planner"]),
    ("thumbfarm-api", ["backfill"]),
    ("thumbfarm-api", ["ingest"]),
    ("thumbfarm-worker", ["run"]),
    ("thumbfarm-worker", []),
]


def options(binary, args):
    try:
        out = subprocess.run([f"{bindir}/{binary}", *args, "--help"], capture_output=True,
                             text=True, check=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return []
    found = []
    blocks, current = [], None
    for line in out.splitlines():
        if re.match(r"^\s{2,}(?:-\w, )?--[\w-]+", line):
            current = [line]
            blocks.append(current)
        elif current is not None:
            current.append(line)
    for lines in blocks:
        block = "\n".join(lines)
        m = re.match(r"\s*(?:-\w, )?(--[\w-]+)", block)
        if not m or m.group(1) in ("--help", "--version"):
            continue
        env = re.search(r"\[env: (\w+)[=\]]", block)
        default = re.search(r"\[default: ([^\]]*)\]", block)
        text = []
        for l in lines[1:]:
            l = l.strip()
            if l.startswith("Possible values:"):
                break
            if l and not l.startswith("["):
                text.append(l)
        found.append((m.group(1), env.group(1) if env else "", default.group(1) if default else "",
                      " ".join(text)))
    return found


seen = {}
for binary, args in COMMANDS:
    for flag, env, default, text in options(binary, args):
        where = f"{binary} {' '.join(args)}".strip()
        if flag in seen:
            seen[flag][4].append(where)
        else:
            seen[flag] = [flag, env, default, text, [where]]

print("| option | environment | default | used by | meaning |")
print("|---|---|---|---|---|")
for flag, env, default, text, where in seen.values():
    users = ", ".join(sorted(set(w.replace("thumbfarm-", "") for w in where)))
    default = f"`{default}`" if default else ""
    env = f"`{env}`" if env else ""
    print(f"| `{flag}` | {env} | {default} | {users} | {text.replace('|', '/')} |")
