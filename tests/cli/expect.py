#!/usr/bin/env python3
"""Runs a command and checks its exit status and output; used by the CLI contract tests.

expect.py [--rc N] [--stdout-exact TEXT] [--stdout REGEX]... [--stderr REGEX]... [--no-stdout]
          -- COMMAND ARGS...
REGEXes are searched (re.MULTILINE). Prints what differs and exits 1 on any mismatch.
"""
import argparse
import re
import subprocess
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rc", type=int, default=0)
    parser.add_argument("--stdout-exact")
    parser.add_argument("--stdout", action="append", default=[])
    parser.add_argument("--stderr", action="append", default=[])
    parser.add_argument("--no-stdout", action="store_true")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    failures = []
    if proc.returncode != args.rc:
        failures.append(f"exit status {proc.returncode}, expected {args.rc}")
    if args.stdout_exact is not None and proc.stdout != args.stdout_exact.replace("\\n", "\n"):
        failures.append(f"stdout differs; expected {args.stdout_exact!r}")
    for pattern in args.stdout:
        if not re.search(pattern, proc.stdout, re.MULTILINE):
            failures.append(f"stdout lacks /{pattern}/")
    for pattern in args.stderr:
        if not re.search(pattern, proc.stderr, re.MULTILINE):
            failures.append(f"stderr lacks /{pattern}/")
    if args.no_stdout and proc.stdout:
        failures.append("stdout should be empty")
    if failures:
        print("command:", " ".join(command))
        print("--- stdout\n" + proc.stdout + "--- stderr\n" + proc.stderr + "---")
        for f in failures:
            print("FAIL:", f)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
