"""Present simulation results: a plain-text table, the JSON contract, and a PNG of IPs held over time."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from warmpool.ipamd.limits import IpMode
from warmpool.sim.engine import RunResult
from warmpool.sim.trace import Trace

_COLUMNS = (
    ("strategy", 12),
    ("idle IP-h", 10),
    ("peak IPs", 9),
    ("waited", 7),
    ("wait s", 8),
    ("p99 s", 6),
    ("EC2 calls", 9),
    ("EC2/node-h", 10),
    ("rollouts", 8),
    ("min free", 8),
)


def report_json(trace: Trace, mode: IpMode, results: Mapping[str, RunResult]) -> dict[str, Any]:
    return {
        "trace": {
            "duration_s": trace.duration,
            "nodes": len(trace.node_names),
            "pod_starts": trace.pod_starts,
            **({"scenario": trace.meta["scenario"]} if "scenario" in trace.meta else {}),
        },
        "mode": mode.value,
        "strategies": {name: r.metrics.to_json() for name, r in results.items()},
    }


def format_table(trace: Trace, mode: IpMode, results: Mapping[str, RunResult]) -> str:
    title = trace.meta.get("scenario", "trace")
    lines = [
        f"{title}: {len(trace.node_names)} nodes, {trace.pod_starts} pod starts over {trace.duration / 3600:.1f} h, "
        f"{mode.value} mode"
    ]
    first = max([_COLUMNS[0][1], *map(len, results)])
    widths = [first, *(w for _, w in _COLUMNS[1:])]
    lines.append(
        "  ".join(f"{c:>{w}}" if i else f"{c:<{w}}" for i, ((c, _), w) in enumerate(zip(_COLUMNS, widths, strict=True)))
    )
    for name, r in results.items():
        m = r.metrics
        cells = [
            f"{name:<{first}}",
            f"{m.idle_ip_hours:>10.1f}",
            f"{m.peak_ips_held:>9}",
            f"{m.waited_pods:>7}",
            f"{m.wait_seconds_total:>8.0f}",
            f"{m.wait_seconds_p99:>6.1f}",
            f"{m.ec2_calls_total:>9}",
            f"{m.ec2_calls_per_node_hour:>10.2f}",
            f"{m.rollouts:>8}",
            f"{'-' if m.min_subnet_free_ips is None else m.min_subnet_free_ips:>8}",
        ]
        lines.append("  ".join(cells) + ("" if m.settings == name else f"  {m.settings}"))
    periods = [(name, r.metrics.periods) for name, r in results.items() if r.metrics.periods]
    if periods:
        split = periods[0][1]["first"]
        lines.append("")
        lines.append(
            f"first {split.end / 3600:g} h vs the rest: "
            "idle IP-h / waited / pod starts / EC2 calls per node-h / rollouts"
        )
        for name, p in periods:
            a, b = p["first"], p["rest"]
            lines.append(
                f"{name:<{first}}  first {a.idle_ip_hours:9.1f} {a.waited_pods:6} {a.pod_starts:7} "
                f"{a.ec2_calls_per_node_hour:7.2f} {a.rollouts:3}   rest {b.idle_ip_hours:9.1f} {b.waited_pods:6} "
                f"{b.pod_starts:7} {b.ec2_calls_per_node_hour:7.2f} {b.rollouts:3}"
            )
    return "\n".join(lines)


def plot(results: Mapping[str, RunResult], path: str | Path, title: str = "") -> None:
    """IPs held (solid) per strategy and IPs in use (dashed, the default's) over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5))
    for name, r in results.items():
        if not r.series:
            continue
        ts = [t / 3600 for t, _, _ in r.series]
        ax.plot(ts, [h for _, h, _ in r.series], label=f"{name}: held", linewidth=2 if name == "default" else 1.2)
    reference = results.get("default") or next(iter(results.values()))
    if reference.series:
        ax.plot(
            [t / 3600 for t, _, _ in reference.series],
            [u for _, _, u in reference.series],
            "k--",
            label="in use",
            linewidth=1,
        )
    ax.set_xlabel("hours")
    ax.set_ylabel("pod IPs (whole cluster)")
    ax.set_title(title or "IPs held vs in use")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
