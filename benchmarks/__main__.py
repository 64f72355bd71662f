"""`make bench`: run every benchmark module (benchmarks/bench_*.py), print its table, and
refresh the README's results table with the headline rows each module returns."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time

import benchmarks
from benchmarks import results


def discover() -> list[str]:
    """Names of the benchmark modules, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__)
                  if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description="Run the benchmarks and print their tables.")
    parser.add_argument("only", nargs="*", help="run only these (e.g. bench_schedulers)")
    args = parser.parse_args(argv)
    names = discover()
    unknown = sorted(set(args.only) - set(names))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(names)}",
              file=sys.stderr)
        return 2
    selected = args.only or names
    if not selected:
        print("no benchmarks yet")
        return 0
    data = None
    for name in selected:
        print(f"== {name} ==", flush=True)
        started = time.monotonic()
        module = importlib.import_module(f"benchmarks.{name}")
        rows = module.main()
        if rows:
            data = results.record(name, rows)
        print(f"({name}: {time.monotonic() - started:.1f} s)\n", flush=True)
    if data is not None:
        if results.refresh_readme(data):
            print(f"refreshed the results table in {results.README.name} "
                  f"(rows kept in {results.STORE.relative_to(results.REPO)})")
        else:
            print(f"no results markers in {results.README.name}; table not written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
