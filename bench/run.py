"""Run every benchmark in ``bench/`` in turn and print their figures (what ``make bench`` runs).

A benchmark is a module ``bench/<name>.py`` that exposes ``def main() -> None`` and prints its
own figures; modules whose names start with ``_`` (shared helpers) and this runner are skipped.
Name modules on the command line to run only those (``python bench/run.py api``). Missing an
aim is not a failure, since benchmarks are not tests, but a benchmark that crashes is: the
runner still runs the others, then exits 1 so a broken benchmark cannot go unnoticed.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    """The benchmark module names in ``bench/``, in name order."""
    return sorted(
        path.stem
        for path in HERE.glob("*.py")
        if path.stem != "run" and not path.stem.startswith("_")
    )


def run(names: list[str]) -> bool:
    """Run the named benchmarks one after the other; True when none of them crashed."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    ok = True
    for name in names:
        print(f"== {name} ==", flush=True)
        started = time.perf_counter()
        try:
            importlib.import_module(name).main()
        except Exception:
            ok = False
            traceback.print_exc()
            print(f"== {name}: CRASHED ==", flush=True)
            continue
        print(f"== {name}: {time.perf_counter() - started:.1f} s ==\n", flush=True)
    return ok


def main(argv: list[str]) -> int:
    available = discover()
    unknown = sorted(set(argv) - set(available))
    if unknown:
        print(f"unknown benchmarks: {', '.join(unknown)} (have: {', '.join(available)})")
        return 2
    return 0 if run(argv or available) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
