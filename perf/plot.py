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


def interpreters(configuration: str) -> int | None:
    """N of ours-N (ours-N+main too); None for the existing plugin."""
    match = re.fullmatch(r"ours-(\d+)(\+main)?", configuration)
    return int(match.group(1)) if match else None


def plot_ladder(path: Path, report: dict) -> None:
    """The CPU route's ladder (bench.py's "ladder" summary): req/s against connections
    for each configuration, with the machine limit (work() in K plain processes); and
    the speed-up over the existing plugin against N, one line per connection level, with
    the machine limit's speed-up (K = cores over K = 1)."""
    ladder = report["ladder"]
    environment = report["environment"]
    levels = ladder["connections"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for row in ladder["rows"]:
        points = [(c, row["req_s"].get(str(c))) for c in levels]
        points = [(c, v) for c, v in points if v is not None]
        left.plot([c for c, _ in points], [v for _, v in points], marker="o",
                  label=row["configuration"])  # fmt: skip
    limit = {int(k): v for k, v in ladder["machine_limit"].items() if v is not None}
    if limit:  # K processes at once, drawn at K connections
        counts = sorted(limit)
        left.plot(counts, [limit[k] for k in counts], linestyle="--", marker="x", color="grey",
                  label="machine limit: K plain processes")  # fmt: skip
    left.set_xscale("log", base=2)
    left.set_xticks(levels, [str(c) for c in levels])
    left.set_xlabel("connections")
    left.set_ylabel("req/s")
    left.set_ylim(bottom=0)
    left.grid(True, alpha=0.3)
    left.legend(fontsize=8)
    ours = [(interpreters(r["configuration"]), r) for r in ladder["rows"]]
    ours = sorted((n, r) for n, r in ours if n is not None)
    colours = plt.get_cmap("viridis")
    for index, level in enumerate(levels):
        points = [(n, r["speedup"].get(str(level))) for n, r in ours]
        points = [(n, v) for n, v in points if v is not None]
        if points:
            right.plot([n for n, _ in points], [v for _, v in points], marker="o",
                       color=colours(index / max(1, len(levels) - 1)),
                       label=f"{level} conn.")  # fmt: skip
    if ladder.get("machine_limit_speedup") and limit:
        right.axhline(ladder["machine_limit_speedup"], linestyle="--", color="grey",
                      label=f"machine limit (K={max(limit)} over K=1)")  # fmt: skip
    right.axhline(1.0, color="black", linewidth=0.8)
    counts = [n for n, _ in ours]
    if counts:
        right.set_xscale("log", base=2)
        right.set_xticks(counts, [str(n) for n in counts])
    right.set_xlabel("interpreters N (ours-N)")
    right.set_ylabel("speed-up over the existing plugin")
    right.set_ylim(bottom=0)
    right.grid(True, alpha=0.3)
    right.legend(fontsize=8)
    title = f"CPU route ladder ({environment['name']}, {environment['cpus']} CPUs)"
    if environment.get("quick"):
        title += " QUICK, not for reporting"
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path.with_name("cpu-bound-route-ladder.png"), dpi=100)
    plt.close(figure)


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
    if report.get("ladder"):
        plot_ladder(path, report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
