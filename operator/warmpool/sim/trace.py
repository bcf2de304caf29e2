"""The churn trace format: JSON Lines, one event per line, times in seconds from the start of the trace.

    {"type": "header", "version": 1, "scenario": "steady", "seed": 1}          (optional, first line only)
    {"t": 0, "type": "node_add", "node": "n1", "instance_type": "m5.large", "zone": "us-east-1a"}
    {"t": 3.5, "type": "pod_start", "node": "n1", "pod": "p1"}
    {"t": 60, "type": "pod_stop", "node": "n1", "pod": "p1"}
    {"t": 900, "type": "node_remove", "node": "n1"}
    {"t": 0, "type": "subnet", "zone": "us-east-1a", "free_ips": 4000}         (t optional, default 0)

Rules beyond each line's schema: times never go backwards; a node is added before it is used and not added
twice while present; a pod starts once, on a present node, and stops on the node it started on. Removing a
node stops its pods. Unknown fields, repeated keys and loosely typed values ("3" for 3) are an error, so a typo
cannot silently change a simulation. `node_add` may carry `max_enis` and `ipv4_per_eni` for instance types the
built-in table does not know.

Every input ends in a `Trace` or a `TraceError` naming the line, never another exception: UTF-8 is checked per
line, lines and counts are capped, JSON's NaN/Infinity and numbers of thousands of digits are refused, and the
limits below (a 30-day horizon, EC2's largest ENI counts) bound the simulator's work by construction. A trace
with no event, or no pod start, is an error: there would be nothing to compare.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any, BinaryIO, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

TRACE_VERSION = 1

# Limits that keep every trace's cost bounded by construction, each far above real use: the simulator steps
# through time, so a time of 1e300 would never end, and it holds every event and node in memory.
HORIZON_SECONDS = 30 * 24 * 3600  # 30 days
MAX_EVENTS = 2_000_000  # ~600 bytes each in memory: ~1.3 GB at most
MAX_LINES = 2 * MAX_EVENTS  # blank lines included, so a file of newlines ends too
MAX_LINE_BYTES = 64 * 1024
MAX_NODES_PRESENT = 5_000  # nodes at once; the largest EKS clusters
MAX_NAME = 253  # node, pod, zone and instance type names
# EC2's largest instance types: 24 ENIs per network card (64 across cards, p5.48xlarge) and 64 IPv4 addresses
# per ENI (VPC CNI's pkg/vpc/vpc_ip_resource_limit.go).
MAX_ENIS = 64
MAX_IPV4_PER_ENI = 64
MAX_FREE_IPS = 1 << 24  # a /8 in one zone
EVENT_TYPES = ("node_add", "node_remove", "pod_start", "pod_stop", "subnet")


def _time(value: float) -> float:
    if not math.isfinite(value) or not 0 <= value <= HORIZON_SECONDS:
        raise ValueError(f"must be seconds from the start of the trace, 0 to {HORIZON_SECONDS} (30 days)")
    return value


Seconds = Annotated[float, AfterValidator(_time)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]


class _Event(BaseModel):
    # strict: "3" is not a time and true is not a count; a typo cannot silently change a simulation.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Header(BaseModel):
    """Optional first line; other keys (generator, scenario parameters) are kept for the reader."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)
    type: Literal["header"]
    version: int


class NodeAdd(_Event):
    type: Literal["node_add"] = "node_add"
    t: Seconds
    node: Name
    instance_type: Name
    zone: str = Field("", max_length=MAX_NAME)
    max_enis: int | None = Field(None, ge=1, le=MAX_ENIS)
    ipv4_per_eni: int | None = Field(None, ge=2, le=MAX_IPV4_PER_ENI)


class NodeRemove(_Event):
    type: Literal["node_remove"] = "node_remove"
    t: Seconds
    node: Name


class PodStart(_Event):
    type: Literal["pod_start"] = "pod_start"
    t: Seconds
    node: Name
    pod: Name


class PodStop(_Event):
    type: Literal["pod_stop"] = "pod_stop"
    t: Seconds
    node: Name
    pod: Name


class SubnetFree(_Event):
    type: Literal["subnet"] = "subnet"
    t: Seconds = 0.0
    zone: str = Field(max_length=MAX_NAME)
    free_ips: int = Field(ge=0, le=MAX_FREE_IPS)


Event = NodeAdd | NodeRemove | PodStart | PodStop | SubnetFree
_EVENT = TypeAdapter[Event](Annotated[Event, Field(discriminator="type")])


class TraceError(ValueError):
    """A trace line that cannot be used; `line` is 1-based."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(slots=True)
class Trace:
    events: list[Event]
    header: Header | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.events[-1].t if self.events else 0.0

    @property
    def pod_starts(self) -> int:
        return sum(1 for e in self.events if isinstance(e, PodStart))

    @property
    def node_names(self) -> list[str]:
        return list(dict.fromkeys(e.node for e in self.events if isinstance(e, NodeAdd)))


class _Checker:
    """The cross-line rules, fed one event at a time."""

    def __init__(self, instance_types: Container[str] | None) -> None:
        self.instance_types = instance_types
        self.last_t = 0.0
        self.nodes: dict[str, set[str]] = {}  # present node -> its running pods
        self.pods: dict[str, str] = {}  # running pod -> its node
        self.started: set[str] = set()

    def check(self, e: Event) -> str | None:
        if e.t < self.last_t:
            return f"time {e.t:g} is before the previous event's {self.last_t:g}"
        self.last_t = e.t
        if isinstance(e, NodeAdd):
            if e.node in self.nodes:
                return f"node {e.node!r} added twice"
            if (e.max_enis is None) != (e.ipv4_per_eni is None):
                return "max_enis and ipv4_per_eni go together"
            if e.max_enis is None and self.instance_types is not None and e.instance_type not in self.instance_types:
                return (
                    f"unknown instance type {e.instance_type!r}: give max_enis (1 to {MAX_ENIS}) and "
                    f"ipv4_per_eni (2 to {MAX_IPV4_PER_ENI}) as EC2 DescribeInstanceTypes reports them"
                )
            if len(self.nodes) >= MAX_NODES_PRESENT:
                return f"more than {MAX_NODES_PRESENT} nodes at once"
            self.nodes[e.node] = set()
        elif isinstance(e, NodeRemove):
            if e.node not in self.nodes:
                return f"node {e.node!r} removed but not present"
            for pod in self.nodes.pop(e.node):
                del self.pods[pod]
        elif isinstance(e, PodStart):
            if e.node not in self.nodes:
                return f"pod {e.pod!r} starts on node {e.node!r}, which is not present"
            if e.pod in self.started:
                return f"pod {e.pod!r} started twice"
            self.started.add(e.pod)
            self.pods[e.pod] = e.node
            self.nodes[e.node].add(e.pod)
        elif isinstance(e, PodStop):
            where = self.pods.pop(e.pod, None)
            if where is None:
                return f"pod {e.pod!r} stops but is not running"
            if where != e.node:
                return f"pod {e.pod!r} stops on node {e.node!r} but runs on {where!r}"
            self.nodes[where].discard(e.pod)
        return None


_TAGS = set(EVENT_TYPES)


def _why(err: ValidationError) -> str:
    parts = []
    for item in err.errors(include_url=False):
        loc = ".".join(str(x) for x in item["loc"] if x not in _TAGS and not str(x).startswith("function-"))
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


_MAX_INT_DIGITS = sys.get_int_max_str_digits()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        keys = [key for key, _ in pairs]
        repeated = next(key for i, key in enumerate(keys) if key in keys[:i])
        raise ValueError(f"key {repeated!r} appears twice")
    return out


# One decoder for all lines: json.loads with options would build a new one per line.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, object_pairs_hook=_unique_keys)


def _json(text: str) -> Any:
    """One line's JSON, or ValueError with a reason fit for a person."""
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise ValueError("not JSON this reader takes: nested too deeply") from None
    except ValueError as exc:  # a constant, a repeated key, an integer of thousands of digits
        if "integer string conversion" in str(exc):
            raise ValueError(f"not JSON this reader takes: an integer of more than {_MAX_INT_DIGITS} digits") from None
        raise ValueError(f"not JSON this reader takes: {exc}") from None


class _Parser:
    def __init__(self, instance_types: Container[str] | None) -> None:
        self.events: list[Event] = []
        self.header: Header | None = None
        self.checker = _Checker(instance_types)
        self.seen_any = False
        self.last_line = 0

    def feed(self, number: int, raw: str) -> None:
        self.last_line = number
        if number > MAX_LINES:
            raise TraceError(number, f"more than {MAX_LINES} lines")
        if len(raw) > MAX_LINE_BYTES:
            raise TraceError(number, f"line longer than {MAX_LINE_BYTES} bytes")
        text = raw.strip()
        if not text:
            return
        try:
            data = _json(text)
        except ValueError as exc:
            raise TraceError(number, str(exc)) from None
        if not isinstance(data, dict):
            raise TraceError(number, 'an event must be a JSON object such as {"t": 0, "type": "node_add", ...}')
        kind = data.get("type")
        if kind == "header":
            self._header(number, data)
            return
        self.seen_any = True
        if kind not in EVENT_TYPES:
            got = "no type" if kind is None else f"type {json.dumps(kind)[:80]}"
            raise TraceError(number, f'{got}: expected "type" one of {", ".join(EVENT_TYPES)} (or header on line 1)')
        try:
            event = _EVENT.validate_python(data)
        except ValidationError as exc:
            raise TraceError(number, _why(exc)) from None
        problem = self.checker.check(event)
        if problem:
            raise TraceError(number, problem)
        if len(self.events) >= MAX_EVENTS:
            raise TraceError(number, f"more than {MAX_EVENTS} events: split the trace")
        self.events.append(event)

    def _header(self, number: int, data: dict[str, Any]) -> None:
        if self.seen_any:
            raise TraceError(number, "a header may only be the first line")
        try:
            header = Header.model_validate(data)
        except ValidationError as exc:
            raise TraceError(number, _why(exc)) from None
        if header.version != TRACE_VERSION:
            raise TraceError(number, f"unsupported trace version {header.version} (this reader knows {TRACE_VERSION})")
        self.header = header
        self.seen_any = True

    def finish(self) -> Trace:
        if not self.events:
            line = max(self.last_line, 1)
            what = "a header and no events" if self.header is not None else "no events"
            raise TraceError(line, f"the trace has {what}: nothing to simulate")
        if not any(isinstance(e, PodStart) for e in self.events):
            raise TraceError(self.last_line, "the trace starts no pods (no pod_start events): nothing to simulate")
        meta = dict(self.header.model_extra or {}) if self.header is not None else {}
        return Trace(events=self.events, header=self.header, meta=meta)


def parse_lines(lines: Iterable[str], instance_types: Container[str] | None = None) -> Trace:
    """Parse a trace; raises TraceError naming the first bad line and why. Blank lines are skipped.
    With `instance_types`, a node of another type must give its limits (max_enis, ipv4_per_eni)."""
    parser = _Parser(instance_types)
    for number, raw in enumerate(lines, start=1):
        parser.feed(number, raw)
    return parser.finish()


def _decoded(fp: BinaryIO) -> Iterator[str]:
    """Lines of UTF-8 text, each read with a bounded buffer; a bad byte or an endless line is a TraceError."""
    number = 0
    while True:
        raw = fp.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise TraceError(number, f"line longer than {MAX_LINE_BYTES} bytes")
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise TraceError(number, f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}") from None


def parse_stream(fp: BinaryIO, instance_types: Container[str] | None = None) -> Trace:
    """Parse a trace from bytes (a file opened in binary mode)."""
    return parse_lines(_decoded(fp), instance_types)


def read_trace(path: str | Path, instance_types: Container[str] | None = None) -> Trace:
    with open(path, "rb") as fp:
        return parse_stream(fp, instance_types)


def event_line(event: Event) -> str:
    return json.dumps(event.model_dump(exclude_none=True), separators=(",", ":"))


def iter_lines(trace: Trace) -> Iterator[str]:
    header = trace.header or Header(type="header", version=TRACE_VERSION, **trace.meta)
    yield json.dumps(header.model_dump(), separators=(",", ":"))
    for e in trace.events:
        yield event_line(e)


def write_trace(trace: Trace, out: IO[str]) -> None:
    for line in iter_lines(trace):
        out.write(line + "\n")
