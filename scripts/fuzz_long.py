"""The long fuzz run: the properties of ``tests/reliability/test_fuzz_*.py`` with many more cases.

Each property feeds random and mutated inputs to one reader (cfg parser, YOLO txt, names, VOC XML,
COCO JSON, ``.data`` description, ``.weights``, checkpoints) and fails on any exception that is not
one of darkyolo's own error types with a one-line message naming the file. CI runs 2,000 cases a
property; this script runs ``--examples`` (default 20,000) and prints the counts per outcome.

    python scripts/fuzz_long.py                       # every property, 20,000 cases each
    python scripts/fuzz_long.py --examples 100000 --only coco
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
import traceback
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests" / "reliability"
SUPPORT = TESTS.parent / "support"  # the shared test builders (tiny.py)
MODULES = ("test_fuzz_cfg", "test_fuzz_labels", "test_fuzz_description", "test_fuzz_weights")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"fuzz_long_{name}", TESTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="cases per property")
    parser.add_argument("--only", default="", help="run the tests whose name contains this")
    args = parser.parse_args()
    if args.examples < 1:
        parser.error("--examples must be at least 1")
    os.environ["DARKYOLO_FUZZ_EXAMPLES"] = str(args.examples)
    sys.path[:0] = [str(TESTS), str(SUPPORT)]
    import fuzzing  # after the environment variable: it reads the example count once

    failures = 0
    rows = []
    for module_name in MODULES:
        module = _load(module_name)
        for name in sorted(n for n in dir(module) if n.startswith("test_")):
            if args.only not in name:
                continue
            start = time.perf_counter()
            try:
                getattr(module, name)()
                status = "ok"
            except Exception:
                failures += 1
                status = "FAILED"
                traceback.print_exc()
            rows.append((f"{module_name}::{name}", status, time.perf_counter() - start))
            print(f"{status:6s} {module_name}::{name} ({rows[-1][2]:.1f} s)", flush=True)

    print(f"\ncases per property (--examples {args.examples}):")
    total = 0
    for prop, outcomes in fuzzing.OUTCOMES.items():
        count = sum(outcomes.values())
        total += count
        detail = ", ".join(f"{k} {v}" for k, v in outcomes.most_common())
        print(f"  {prop:20s} {count:8d}  ({detail})")
    print(f"  {'all':20s} {total:8d}; {failures} failed tests")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
