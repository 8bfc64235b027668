"""How long a command takes to start: ``darkyolo CMD --help`` against ``python -c "import torch"``.

Run: ``python benchmarks/startup.py [--rounds 7]``. Each round starts every command once as a new
process, in turns (so load from other processes falls on all alike); the table gives the median
wall time of each and its ratio to importing PyTorch, measured in the same run. The issue's target:
``darkyolo detect --help`` in at most half the time of ``import torch``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
    "darkyolo --help": [sys.executable, "-m", "darkyolo.cli", "--help"],
    "darkyolo detect --help": [sys.executable, "-m", "darkyolo.cli", "detect", "--help"],
    "darkyolo train --help": [sys.executable, "-m", "darkyolo.cli", "train", "--help"],
    "darkyolo classify train --help": [
        sys.executable,
        "-m",
        "darkyolo.cli",
        "classify",
        "train",
        "--help",
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(rounds):
        for name, argv in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - start)
    torch_s = statistics.median(times["python -c 'import torch'"])
    print(f"{'command':<34}{'median s':>10}{'vs import torch':>18}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<34}{median:>10.3f}{median / torch_s:>17.2f}x")


if __name__ == "__main__":
    main()
