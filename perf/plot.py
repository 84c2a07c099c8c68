"""Plots a results.json of perf/bench.py: throughput against concurrency, one line per
configuration with its min-max spread as error bars, one PNG per load scenario, next
to the results.json. Run with a Python that has matplotlib (scripts/bench.sh uses
.venv-perf, apart from the plugin's environment)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

THROUGHPUT_UNITS = ("req/s", "instances/s")


def main(results_file: str) -> int:
    path = Path(results_file)
    report = json.loads(path.read_text())
    environment = report["environment"]
    rows = [
        m
        for m in report["measurements"]
        if m["unit"] in THROUGHPUT_UNITS and m["median"] is not None
    ]
    for scenario in dict.fromkeys(m["scenario"] for m in rows):
        figure, axes = plt.subplots(figsize=(6, 4))
        in_scenario = [m for m in rows if m["scenario"] == scenario]
        for name in dict.fromkeys(m["configuration"] for m in in_scenario):
            points = sorted(
                (m["concurrency"], m["median"], m["min"], m["max"])
                for m in in_scenario
                if m["configuration"] == name
            )
            x = [p[0] for p in points]
            y = [p[1] for p in points]
            spread = [[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]]
            axes.errorbar(x, y, yerr=spread, marker="o", capsize=3, label=name)
        axes.set_xscale("log", base=2)
        ticks = sorted({m["concurrency"] for m in in_scenario})
        axes.set_xticks(ticks, [str(t) for t in ticks])
        axes.set_xlabel("concurrent clients")
        axes.set_ylabel(in_scenario[0]["unit"])
        title = f"{scenario} ({environment['name']})"
        if environment.get("quick"):
            title += " QUICK, not for reporting"
        axes.set_title(title, fontsize=10)
        axes.set_ylim(bottom=0)
        axes.grid(True, alpha=0.3)
        axes.legend()
        figure.tight_layout()
        name = re.sub(r"[^a-z0-9]+", "-", scenario.lower()).strip("-")
        figure.savefig(path.with_name(f"{name}.png"), dpi=100)
        plt.close(figure)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
