"""Plots perf/results/results.json: throughput against concurrency, one line per
configuration, one PNG per scenario. Run with a Python that has matplotlib
(scripts/bench.sh uses .venv-perf, apart from the plugin's environment)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(results_file: str) -> int:
    path = Path(results_file)
    results = json.loads(path.read_text())["results"]
    for scenario in dict.fromkeys(r["scenario"] for r in results):
        figure, axes = plt.subplots(figsize=(6, 4))
        rows = [r for r in results if r["scenario"] == scenario]
        for name in dict.fromkeys(r["configuration"] for r in rows):
            points = sorted(
                (r["concurrency"], r["requests_per_s"]) for r in rows if r["configuration"] == name
            )
            axes.plot(*zip(*points, strict=True), marker="o", label=name)
        axes.set_xscale("log", base=2)
        axes.set_xlabel("concurrent clients")
        axes.set_ylabel("instances/s" if "storage" in scenario else "requests/s")
        axes.set_title(scenario)
        axes.grid(True, alpha=0.3)
        axes.legend()
        figure.tight_layout()
        name = re.sub(r"[^a-z0-9]+", "-", scenario.lower()).strip("-")
        figure.savefig(path.with_name(f"{name}.png"), dpi=100)
        plt.close(figure)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
