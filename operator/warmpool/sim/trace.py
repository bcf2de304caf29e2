"""The churn trace format: JSON Lines, one event per line, times in seconds from the start of the trace.

    {"type": "header", "version": 1, "scenario": "steady", "seed": 1}          (optional, first line only)
    {"t": 0, "type": "node_add", "node": "n1", "instance_type": "m5.large", "zone": "us-east-1a"}
    {"t": 3.5, "type": "pod_start", "node": "n1", "pod": "p1"}
    {"t": 60, "type": "pod_stop", "node": "n1", "pod": "p1"}
    {"t": 900, "type": "node_remove", "node": "n1"}
    {"t": 0, "type": "subnet", "zone": "us-east-1a", "free_ips": 4000}         (t optional, default 0)

Rules beyond each line's schema: times never go backwards; a node is added before it is used and not added
twice while present; a pod starts once, on a present node, and stops on the node it started on. Removing a
node stops its pods. Unknown fields are an error, so a typo cannot silently change a simulation.
`node_add` may carry `max_enis` and `ipv4_per_eni` for instance types the built-in table does not know.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

TRACE_VERSION = 1


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Header(BaseModel):
    """Optional first line; other keys (generator, scenario parameters) are kept for the reader."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: Literal["header"]
    version: int


class NodeAdd(_Event):
    type: Literal["node_add"] = "node_add"
    t: float = Field(ge=0)
    node: str = Field(min_length=1)
    instance_type: str = Field(min_length=1)
    zone: str = ""
    max_enis: int | None = Field(None, ge=1)
    ipv4_per_eni: int | None = Field(None, ge=2)


class NodeRemove(_Event):
    type: Literal["node_remove"] = "node_remove"
    t: float = Field(ge=0)
    node: str = Field(min_length=1)


class PodStart(_Event):
    type: Literal["pod_start"] = "pod_start"
    t: float = Field(ge=0)
    node: str = Field(min_length=1)
    pod: str = Field(min_length=1)


class PodStop(_Event):
    type: Literal["pod_stop"] = "pod_stop"
    t: float = Field(ge=0)
    node: str = Field(min_length=1)
    pod: str = Field(min_length=1)


class SubnetFree(_Event):
    type: Literal["subnet"] = "subnet"
    t: float = Field(0.0, ge=0)
    zone: str
    free_ips: int = Field(ge=0)


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

    def __init__(self) -> None:
        self.last_t = 0.0
        self.nodes: set[str] = set()
        self.pods: dict[str, str] = {}
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
            self.nodes.add(e.node)
        elif isinstance(e, NodeRemove):
            if e.node not in self.nodes:
                return f"node {e.node!r} removed but not present"
            self.nodes.discard(e.node)
            self.pods = {p: n for p, n in self.pods.items() if n != e.node}
        elif isinstance(e, PodStart):
            if e.node not in self.nodes:
                return f"pod {e.pod!r} starts on node {e.node!r}, which is not present"
            if e.pod in self.started:
                return f"pod {e.pod!r} started twice"
            self.started.add(e.pod)
            self.pods[e.pod] = e.node
        elif isinstance(e, PodStop):
            where = self.pods.pop(e.pod, None)
            if where is None:
                return f"pod {e.pod!r} stops but is not running"
            if where != e.node:
                return f"pod {e.pod!r} stops on node {e.node!r} but runs on {where!r}"
        return None


def _why(err: ValidationError) -> str:
    parts = []
    for item in err.errors():
        loc = ".".join(str(x) for x in item["loc"] if x not in ("node_add", "node_remove", "pod_start", "pod_stop"))
        parts.append(f"{loc}: {item['msg']}" if loc else item["msg"])
    return "; ".join(parts)


def parse_lines(lines: Iterable[str]) -> Trace:
    """Parse a trace; raises TraceError naming the first bad line and why. Blank lines are skipped."""
    events: list[Event] = []
    header: Header | None = None
    checker = _Checker()
    seen_any = False
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TraceError(number, f"not JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise TraceError(number, "an event must be a JSON object")
        if data.get("type") == "header":
            if seen_any:
                raise TraceError(number, "a header may only be the first line")
            try:
                header = Header.model_validate(data)
            except ValidationError as exc:
                raise TraceError(number, _why(exc)) from None
            if header.version != TRACE_VERSION:
                raise TraceError(
                    number, f"unsupported trace version {header.version} (this reader knows {TRACE_VERSION})"
                )
            seen_any = True
            continue
        seen_any = True
        try:
            event = _EVENT.validate_python(data)
        except ValidationError as exc:
            raise TraceError(number, _why(exc)) from None
        problem = checker.check(event)
        if problem:
            raise TraceError(number, problem)
        events.append(event)
    meta = dict(header.model_extra or {}) if header is not None else {}
    return Trace(events=events, header=header, meta=meta)


def read_trace(path: str | Path) -> Trace:
    with open(path, encoding="utf-8") as fp:
        return parse_lines(fp)


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
