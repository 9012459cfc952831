"""``apsis-sync --help`` and ``--version`` against ``python -c pass``, side by side.

Alternating runs (``--runs`` each, default 20); the report is the median of each and the
difference, which is what the command adds to an interpreter start.

    .venv/bin/python bench/startup.py            # --quick: 5 runs each
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "apsis-sync"


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs = 5 if args.quick else args.runs
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "apsis-sync --help": [str(SCRIPT), "--help"],
        "apsis-sync --version": [str(SCRIPT), "--version"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name].append(timed(cmd))
    base = statistics.median(times["python -c pass"])
    out = {name: round(statistics.median(v), 3) for name, v in times.items()}
    out.update(
        {
            f"{name} over python": round(statistics.median(v) - base, 3)
            for name, v in times.items()
            if name != "python -c pass"
        }
    )
    out["load"] = Path("/proc/loadavg").read_text().split()[0]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
