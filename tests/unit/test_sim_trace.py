"""The trace format: round trip, and every bad line named with its number and reason."""

from __future__ import annotations

import io

import pytest

from warmpool.sim.scenarios import generate
from warmpool.sim.trace import NodeAdd, PodStart, TraceError, parse_lines, write_trace

GOOD = [
    '{"type":"header","version":1,"scenario":"hand"}',
    '{"t":0,"type":"subnet","zone":"a","free_ips":100}',
    '{"t":0,"type":"node_add","node":"n1","instance_type":"m5.large","zone":"a"}',
    '{"t":3.5,"type":"pod_start","node":"n1","pod":"p1"}',
    "",
    '{"t":60,"type":"pod_stop","node":"n1","pod":"p1"}',
    '{"t":900,"type":"node_remove","node":"n1"}',
]


def test_parse_good_trace() -> None:
    trace = parse_lines(GOOD)
    assert trace.meta == {"scenario": "hand"}
    assert len(trace.events) == 5
    assert trace.duration == 900
    assert trace.pod_starts == 1
    assert isinstance(trace.events[1], NodeAdd)
    assert trace.events[1].instance_type == "m5.large"


@pytest.mark.parametrize(
    ("lines", "line", "reason"),
    [
        (['{"t":0,"type":"node_add","node":"n1","instance_type":"m5.large"}', "{nope"], 2, "not JSON"),
        (["[1,2]"], 1, "JSON object"),
        (['{"t":0,"type":"node_added","node":"n1"}'], 1, "node_added"),
        (['{"t":-1,"type":"node_add","node":"n1","instance_type":"x"}'], 1, "t: Input should be greater"),
        (['{"t":0,"type":"node_add","node":"n1"}'], 1, "instance_type: Field required"),
        (['{"t":0,"type":"node_add","node":"n1","instance_type":"x","colour":"red"}'], 1, "colour"),
        (
            ['{"t":5,"type":"node_add","node":"n1","instance_type":"x"}', '{"t":4,"type":"node_remove","node":"n1"}'],
            2,
            "before",
        ),
        (['{"t":0,"type":"pod_start","node":"n9","pod":"p"}'], 1, "not present"),
        (
            [
                '{"t":0,"type":"node_add","node":"n1","instance_type":"x"}',
                '{"t":1,"type":"pod_start","node":"n1","pod":"p"}',
                '{"t":2,"type":"pod_stop","node":"n1","pod":"p"}',
                '{"t":3,"type":"pod_start","node":"n1","pod":"p"}',
            ],
            4,
            "started twice",
        ),
        (
            [
                '{"t":0,"type":"node_add","node":"n1","instance_type":"x"}',
                '{"t":1,"type":"pod_stop","node":"n1","pod":"p"}',
            ],
            2,
            "not running",
        ),
        (
            [
                '{"t":0,"type":"node_add","node":"n1","instance_type":"x"}',
                '{"t":0,"type":"node_add","node":"n1","instance_type":"x"}',
            ],
            2,
            "added twice",
        ),
        (
            ['{"t":0,"type":"node_add","node":"n1","instance_type":"x"}', '{"type":"header","version":1}'],
            2,
            "first line",
        ),
        (['{"type":"header","version":2}'], 1, "unsupported trace version 2"),
        (['{"t":0,"type":"node_add","node":"n1","instance_type":"x","max_enis":3}'], 1, "go together"),
    ],
)
def test_bad_lines(lines: list[str], line: int, reason: str) -> None:
    with pytest.raises(TraceError) as err:
        parse_lines(lines)
    assert err.value.line == line
    assert reason in err.value.reason
    assert str(err.value).startswith(f"line {line}: ")


def test_pods_of_a_removed_node_are_gone() -> None:
    lines = [
        '{"t":0,"type":"node_add","node":"n1","instance_type":"x"}',
        '{"t":1,"type":"pod_start","node":"n1","pod":"p"}',
        '{"t":2,"type":"node_remove","node":"n1"}',
        '{"t":3,"type":"pod_stop","node":"n1","pod":"p"}',
    ]
    with pytest.raises(TraceError, match="line 4"):
        parse_lines(lines)


def test_write_then_read_round_trips() -> None:
    trace = generate("scale-out", seed=3, nodes=2, new_nodes=2, hours=1.6)
    out = io.StringIO()
    write_trace(trace, out)
    back = parse_lines(out.getvalue().splitlines())
    assert back.events == trace.events
    assert back.meta["scenario"] == "scale-out"
    assert back.meta["seed"] == 3
    assert any(isinstance(e, PodStart) for e in back.events)
