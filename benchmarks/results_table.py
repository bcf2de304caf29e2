"""The README's results table: every built-in scenario in both modes, as `warmpool simulate --scenario S --mode M
--json` reports it, reduced to the ratios the project is judged by. Prints Markdown; asserts nothing.

python benchmarks/results_table.py            # runs every scenario (minutes)
python benchmarks/results_table.py --from DIR # reads DIR/<scenario>-<mode>.json written by earlier runs
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

SCENARIOS = ("steady", "diurnal", "batch", "scale-out", "mixed", "diurnal-3d")
MODES = ("secondary", "prefix")
HEADER = (
    "| scenario | mode | nodes / pod starts | warmpool ÷ default idle IP-h | waits: warmpool / default (allowed) "
    "| ÷ best static (fine grid) | ÷ best per type | ÷ best per node | ÷ best static within the EC2 budget "
    "| rollouts | EC2 calls / node-h: warmpool / default |"
)


def load(directory: Path | None, scenario: str, mode: str) -> dict[str, Any]:
    if directory is not None:
        return dict(json.loads((directory / f"{scenario}-{mode}.json").read_text()))
    out = subprocess.run(
        [sys.executable, "-m", "warmpool.cli", "simulate", "--scenario", scenario, "--mode", mode, "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out))


def row(label: str, mode: str, trace: dict[str, Any], s: dict[str, dict[str, Any]], period: str | None) -> str:
    def pick(name: str) -> dict[str, Any]:
        m = s[name]
        return m["periods"][period] if period else m

    w, d, b, t, n = (
        pick(k) for k in ("warmpool", "default", "best_static", "best_static_per_type", "best_static_per_node")
    )
    starts = w["pod_starts"]
    if "best_static_in_budget" in s:
        g = pick("best_static_in_budget")
        shown = "" if period else f", `{s['best_static_in_budget']['settings']}`"
        in_budget = f"{w['idle_ip_hours'] / g['idle_ip_hours']:.2f} ({g['idle_ip_hours']:.0f}{shown})"
    else:
        in_budget = "-"
    allowed = d["waited_pods"] + starts / 1000
    ok = "ok" if w["waited_pods"] <= allowed else "**over**"
    calls = (
        f"{w['ec2_calls_per_node_hour']:.2f} / {d['ec2_calls_per_node_hour']:.2f}"
        if period
        else f"{s['warmpool']['ec2_calls_per_node_hour']:.2f} / {s['default']['ec2_calls_per_node_hour']:.2f}"
    )
    nodes = trace["nodes"]
    return (
        f"| {label} | {mode} | {nodes} / {starts} | {w['idle_ip_hours']:.0f} / {d['idle_ip_hours']:.0f} = "
        f"{w['idle_ip_hours'] / d['idle_ip_hours']:.2f} | {w['waited_pods']} / {d['waited_pods']} ({allowed:.1f}) {ok} "
        f"| {w['idle_ip_hours'] / b['idle_ip_hours']:.2f} ({b['idle_ip_hours']:.0f}"
        + ("" if period else f", `{s['best_static']['settings']}`")
        + f") | {w['idle_ip_hours'] / t['idle_ip_hours']:.2f} | {w['idle_ip_hours'] / n['idle_ip_hours']:.2f} "
        f"({n['idle_ip_hours']:.0f}) | {in_budget} | {w['rollouts']} | {calls} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--from", dest="directory", type=Path)
    args = parser.parse_args()
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    for scenario in SCENARIOS:
        for mode in MODES:
            report = load(args.directory, scenario, mode)
            s, trace = report["strategies"], report["trace"]
            if "periods" in s["warmpool"]:
                hours = s["warmpool"]["periods"]["first"]["end_s"] / 3600
                print(row(f"{scenario}, first {hours:g} h", mode, trace, s, "first"))
                print(row(f"{scenario}, the rest", mode, trace, s, "rest"))
            else:
                print(row(scenario, mode, trace, s, None))


if __name__ == "__main__":
    main()
