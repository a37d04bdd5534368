"""Benchmark of migrator's start-up (issue 17): what one command costs from process start to exit.

For each command given (a `migrator` command line, quoted), `--runs` fresh interpreters run
`python -m migrator COMMAND`, then as many again under `python -X importtime`. Printed per command,
medians over the runs: the wall time and the CPU (user + sys, from wait4's rusage) of the plain runs,
the import time (the sum of the top-level imports' cumulative microseconds that `-X importtime`
reports: what the command's imports cost, wherever in the run they happen), and the number of
modules imported and which of the heavy packages (HEAVY) among them. migrator's modules are
byte-compiled first, as pip does at install (this machine sets PYTHONDONTWRITEBYTECODE).

    python scripts/bench_startup.py 'apply --help' 'apply PLAN --yes' 'status PLAN'
    python scripts/bench_startup.py --runs 10 'plan PLAN'
"""

from __future__ import annotations

import argparse
import compileall
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import migrator

HEAVY = ("networkx", "rich", "oss2", "elastic_transport", "pydantic", "yaml", "requests", "sqlite3")


def plain_run(command: list[str]) -> tuple[float, float, int]:
    """(wall s, user+sys CPU s, exit code) of `python -m migrator COMMAND`, output discarded."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "migrator", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(child.pid, 0)
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime, os.waitstatus_to_exitcode(status)


def import_run(command: list[str]) -> tuple[float, int, set[str]]:
    """(seconds of imports, modules imported, top-level packages imported) of one run under `-X importtime`."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "migrator", *command],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    total_us, modules, packages = 0, 0, set()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        modules += 1
        packages.add(name.strip().split(".")[0])
        if not name.startswith("  "):  # a top-level import (nested ones are indented under it)
            total_us += int(cumulative)
    return total_us / 1e6, modules, packages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("commands", nargs="+", help="migrator command lines, each quoted: 'apply --help'")
    parser.add_argument("--runs", type=int, default=10, help="runs of each command, each way (default 10)")
    args = parser.parse_args()
    compileall.compile_dir(Path(migrator.__file__).resolve().parent, quiet=1)
    print(f"load average {' '.join(f'{value:.2f}' for value in os.getloadavg())} on {os.cpu_count()} cores")
    for text in args.commands:
        command = shlex.split(text)
        plain = [plain_run(command) for _ in range(args.runs)]
        codes = sorted({code for _, _, code in plain})
        imports = [import_run(command) for _ in range(args.runs)]
        packages = set().union(*(names for _, _, names in imports))
        print(
            f"migrator {text}: wall {statistics.median(wall for wall, _, _ in plain):.3f} s, "
            f"CPU {statistics.median(cpu for _, cpu, _ in plain):.3f} s, "
            f"imports {statistics.median(seconds for seconds, _, _ in imports):.3f} s "
            f"of {statistics.median(count for _, count, _ in imports):.0f} modules "
            f"(median of {args.runs}; exit {','.join(map(str, codes))}); "
            f"heavy packages: {', '.join(name for name in HEAVY if name in packages) or 'none'}"
        )
    print(f"load average {' '.join(f'{value:.2f}' for value in os.getloadavg())} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
