"""The trace format: round trip, and every bad line named with its number and reason."""

from __future__ import annotations

import io
import json
import math

import pytest
from hypothesis import event as note_event
from hypothesis import given, settings
from hypothesis import strategies as st

from warmpool.aws.instance_table import FALLBACK_LIMITS
from warmpool.ipamd.limits import IpMode
from warmpool.sim.engine import StaticStrategy, simulate
from warmpool.sim.scenarios import generate
from warmpool.sim.trace import (
    HORIZON_SECONDS,
    MAX_ENIS,
    MAX_EVENTS,
    MAX_IPV4_PER_ENI,
    NodeAdd,
    PodStart,
    Trace,
    TraceError,
    parse_lines,
    parse_stream,
    write_trace,
)

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
        (['{"t":-1,"type":"node_add","node":"n1","instance_type":"x"}'], 1, "t: must be seconds from the start"),
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


# ----- fuzz: whatever the bytes, the parser answers with a Trace or a TraceError, and a Trace is bounded -----

_KEYS = ["t", "type", "node", "pod", "instance_type", "zone", "max_enis", "ipv4_per_eni", "free_ips", "version"]
_TYPES = ["header", "node_add", "node_remove", "pod_start", "pod_stop", "subnet", "nope"]
_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["n1", "n2", "p1", "p2", "m5.large", "t3.medium", "a", "", "header", "node_add"])
    | st.text(max_size=8)
)
_JSON = st.recursive(
    _JSON_LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
)
_EVENT_DICT = st.fixed_dictionaries(
    {"type": st.sampled_from(_TYPES)},
    optional={k: st.one_of(_JSON_LEAVES, _JSON) for k in _KEYS if k != "type"},
)


@st.composite
def _coherent_events(draw: st.DrawFn) -> list[dict[str, object]]:
    """Mostly valid traces (nodes before their pods, times in order), with limits near EC2's edges."""
    times = st.floats(0, 6 * 3600, allow_nan=False)
    events: list[dict[str, object]] = []
    for n in range(draw(st.integers(1, 3))):
        node: dict[str, object] = {"t": draw(times), "type": "node_add", "node": f"n{n}"}
        if draw(st.booleans()):
            node |= {"instance_type": "custom", "max_enis": draw(st.integers(0, 66))}
            node["ipv4_per_eni"] = draw(st.integers(1, 66))
        else:
            node["instance_type"] = draw(st.sampled_from(["m5.large", "t3.medium", "c5.24xlarge"]))
        events.append(node)
        for p in range(draw(st.integers(0, 40))):
            start = draw(times)
            if start < float(node["t"]):  # type: ignore[arg-type]
                continue
            events.append({"t": start, "type": "pod_start", "node": f"n{n}", "pod": f"n{n}p{p}"})
            if draw(st.booleans()):
                events.append({"t": start + draw(times), "type": "pod_stop", "node": f"n{n}", "pod": f"n{n}p{p}"})
    order = {"node_add": 0, "pod_start": 1, "pod_stop": 2}
    return sorted(events, key=lambda e: (e["t"], order[str(e["type"])]))


def _assert_bounded(trace: Trace) -> None:
    """What keeps the simulator's work finite: times within the horizon, limits within EC2's, sizes capped."""
    assert trace.events
    assert len(trace.events) <= MAX_EVENTS
    for event in trace.events:
        assert 0 <= event.t <= HORIZON_SECONDS
        if isinstance(event, NodeAdd) and event.max_enis is not None:
            assert event.ipv4_per_eni is not None
            assert 1 <= event.max_enis <= MAX_ENIS
            assert 2 <= event.ipv4_per_eni <= MAX_IPV4_PER_ENI


def _parse(data: bytes) -> Trace | None:
    error: TraceError | None = None
    try:
        trace = parse_stream(io.BytesIO(data), instance_types=FALLBACK_LIMITS)
    except TraceError as exc:  # the parser's own error, with a line and a one-line reason; nothing else escapes
        error = exc
    if error is not None:
        assert error.line >= 1
        assert "\n" not in error.reason
        return None
    _assert_bounded(trace)
    return trace


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_fuzz_arbitrary_bytes(chunks: list[bytes]) -> None:
    _parse(b"\n".join(chunks))


@settings(max_examples=300, deadline=None)
@given(st.lists(_EVENT_DICT | _JSON, max_size=6))
def test_fuzz_arbitrary_json_lines(values: list[object]) -> None:
    _parse(b"\n".join(json.dumps(v).encode() for v in values))


@settings(max_examples=100, deadline=None)
@given(_coherent_events(), st.sampled_from(list(IpMode)))
def test_fuzz_parsed_traces_simulate_to_the_end(events: list[dict[str, object]], mode: IpMode) -> None:
    """A trace the parser accepts is one the engine runs through: it ends, and its figures are finite."""
    trace = _parse(b"\n".join(json.dumps(e).encode() for e in events))
    note_event("parsed" if trace is not None else "rejected")
    if trace is None:
        return
    result = simulate(trace, StaticStrategy(), mode)
    assert math.isfinite(result.metrics.idle_ip_hours)
    assert result.series[-1][0] <= HORIZON_SECONDS + 60


def test_deeply_nested_and_huge_numbers_are_trace_errors() -> None:
    for line in ("[" * 100_000, '{"a":' * 20_000 + "1" + "}" * 20_000, '{"t":' + "9" * 10_000 + "}"):
        with pytest.raises(TraceError, match="line 1: "):
            parse_stream(io.BytesIO(line.encode()))
