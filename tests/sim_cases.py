"""Bad inputs of `warmpool simulate`, each with the one line it must print and its exit code (2: bad input).

Files are written as `trace.jsonl` / `policy.yaml` in the test's working directory, so the line names them so.
"""

from __future__ import annotations

from dataclasses import dataclass

NODE = b'{"t":0,"type":"node_add","node":"n1","instance_type":"m5.large"}'
START = b'{"t":1,"type":"pod_start","node":"n1","pod":"p1"}'
HEADER = b'{"type":"header","version":1}'
HORIZON = "must be seconds from the start of the trace, 0 to 2592000 (30 days)"
EXIT_BAD_INPUT = 2


def _node(**fields: object) -> bytes:
    extra = "".join(f',"{k}":{v}' for k, v in fields.items())
    return b'{"t":0,"type":"node_add","node":"n1","instance_type":"m5.large"' + extra.encode() + b"}"


@dataclass(frozen=True)
class BadFile:
    content: bytes
    message: str  # the whole line printed on stderr
    exit_code: int = EXIT_BAD_INPUT


def _trace(*lines: bytes) -> bytes:
    return b"\n".join(lines) + b"\n"


BAD_TRACES: dict[str, BadFile] = {
    "empty": BadFile(b"", "trace.jsonl:1: the trace has no events: nothing to simulate"),
    "only blank lines": BadFile(b"\n \n\t\n", "trace.jsonl:3: the trace has no events: nothing to simulate"),
    "header only": BadFile(_trace(HEADER), "trace.jsonl:1: the trace has a header and no events: nothing to simulate"),
    "no pod starts": BadFile(
        _trace(HEADER, NODE, b'{"t":5,"type":"node_remove","node":"n1"}'),
        "trace.jsonl:3: the trace starts no pods (no pod_start events): nothing to simulate",
    ),
    "time 1e300": BadFile(_trace(_node().replace(b'"t":0', b'"t":1e300'), START), f"trace.jsonl:1: t: {HORIZON}"),
    "time 1e400 (infinite as a float)": BadFile(
        _trace(NODE, START.replace(b'"t":1', b'"t":1e400')), f"trace.jsonl:2: t: {HORIZON}"
    ),
    "time just past 30 days": BadFile(
        _trace(NODE, START.replace(b'"t":1', b'"t":2592000.001')), f"trace.jsonl:2: t: {HORIZON}"
    ),
    "time Infinity": BadFile(
        _trace(NODE, START.replace(b'"t":1', b'"t":Infinity')),
        "trace.jsonl:2: not JSON this reader takes: Infinity is not a number JSON allows",
    ),
    "time NaN": BadFile(
        _trace(NODE, START.replace(b'"t":1', b'"t":NaN')),
        "trace.jsonl:2: not JSON this reader takes: NaN is not a number JSON allows",
    ),
    "negative time": BadFile(_trace(_node().replace(b'"t":0', b'"t":-1'), START), f"trace.jsonl:1: t: {HORIZON}"),
    "time as a string": BadFile(
        _trace(NODE, START.replace(b'"t":1', b'"t":"1"')), "trace.jsonl:2: t: Input should be a valid number"
    ),
    "time as a boolean": BadFile(
        _trace(NODE, START.replace(b'"t":1', b'"t":true')), "trace.jsonl:2: t: Input should be a valid number"
    ),
    "time goes backwards": BadFile(
        _trace(NODE, START.replace(b'"t":1', b'"t":9'), b'{"t":8,"type":"pod_stop","node":"n1","pod":"p1"}'),
        "trace.jsonl:3: time 8 is before the previous event's 9",
    ),
    "max_enis of 1e9": BadFile(
        _trace(_node(max_enis=1000000000, ipv4_per_eni=10), START),
        "trace.jsonl:1: max_enis: Input should be less than or equal to 64",
    ),
    "max_enis as a float": BadFile(
        _trace(_node(max_enis="1e9", ipv4_per_eni=10), START),
        "trace.jsonl:1: max_enis: Input should be a valid integer",
    ),
    "max_enis 0": BadFile(
        _trace(_node(max_enis=0, ipv4_per_eni=10), START),
        "trace.jsonl:1: max_enis: Input should be greater than or equal to 1",
    ),
    "65 IPv4 addresses per ENI": BadFile(
        _trace(_node(max_enis=4, ipv4_per_eni=65), START),
        "trace.jsonl:1: ipv4_per_eni: Input should be less than or equal to 64",
    ),
    "1 IPv4 address per ENI": BadFile(
        _trace(_node(max_enis=4, ipv4_per_eni=1), START),
        "trace.jsonl:1: ipv4_per_eni: Input should be greater than or equal to 2",
    ),
    "max_enis without ipv4_per_eni": BadFile(
        _trace(_node(max_enis=4), START), "trace.jsonl:1: max_enis and ipv4_per_eni go together"
    ),
    "unknown instance type without limits": BadFile(
        _trace(NODE.replace(b"m5.large", b"m99.huge"), START),
        "trace.jsonl:1: unknown instance type 'm99.huge': give max_enis (1 to 64) and ipv4_per_eni (2 to 64) as "
        "EC2 DescribeInstanceTypes reports them",
    ),
    "an integer of 5000 digits": BadFile(
        _trace(_node(max_enis="9" * 5000, ipv4_per_eni=10), START),
        "trace.jsonl:1: not JSON this reader takes: an integer of more than 4300 digits",
    ),
    "not UTF-8": BadFile(
        _trace(NODE, b'{"t":1,"type":"pod_start","node":"n1","pod":"p\xff"}'),
        "trace.jsonl:2: not UTF-8: byte 0xff at column 47",
    ),
    "UTF-16": BadFile(
        "\ufeff".encode("utf-16-le") + NODE.decode().encode("utf-16-le"),
        "trace.jsonl:1: not UTF-8: byte 0xff at column 1",
    ),
    "deeply nested JSON": BadFile(
        _trace(b'{"t":0,"type":"header","x":' + b"[" * 30000 + b"]" * 30000 + b"}"),
        "trace.jsonl:1: not JSON this reader takes: nested too deeply",
    ),
    "a line of 1 MiB": BadFile(
        _trace(NODE, b'{"t":1,"type":"pod_start","node":"n1","pod":"' + b"p" * (1 << 20) + b'"}'),
        "trace.jsonl:2: line longer than 65536 bytes",
    ),
    "broken JSON": BadFile(
        _trace(NODE, b"{nope"), "trace.jsonl:2: not JSON: Expecting property name enclosed in double quotes (column 2)"
    ),
    "a key twice": BadFile(
        _trace(NODE, b'{"t":1,"t":2,"type":"pod_start","node":"n1","pod":"p1"}'),
        "trace.jsonl:2: not JSON this reader takes: key 't' appears twice",
    ),
    "not an object": BadFile(
        _trace(b"[1,2]"),
        'trace.jsonl:1: an event must be a JSON object such as {"t": 0, "type": "node_add", ...}',
    ),
    "no type": BadFile(
        _trace(b'{"t":0}'),
        'trace.jsonl:1: no type: expected "type" one of node_add, node_remove, pod_start, pod_stop, subnet '
        "(or header on line 1)",
    ),
    "unknown type": BadFile(
        _trace(b'{"t":0,"type":"node_added","node":"n1"}'),
        'trace.jsonl:1: type "node_added": expected "type" one of node_add, node_remove, pod_start, pod_stop, '
        "subnet (or header on line 1)",
    ),
    "unknown field": BadFile(_trace(_node(colour='"red"'), START), "trace.jsonl:1: colour: unknown field"),
    "missing field": BadFile(
        _trace(b'{"t":0,"type":"node_add","node":"n1"}', START), "trace.jsonl:1: instance_type: Field required"
    ),
    "empty node name": BadFile(
        _trace(NODE.replace(b'"n1"', b'""'), START),
        "trace.jsonl:1: node: String should have at least 1 character",
    ),
    "node name of 254": BadFile(
        _trace(NODE.replace(b'"n1"', b'"' + b"n" * 254 + b'"'), START),
        "trace.jsonl:1: node: String should have at most 253 characters",
    ),
    "negative free IPs": BadFile(
        _trace(b'{"type":"subnet","zone":"a","free_ips":-1}', NODE, START),
        "trace.jsonl:1: free_ips: Input should be greater than or equal to 0",
    ),
    "free IPs beyond a /8": BadFile(
        _trace(b'{"type":"subnet","zone":"a","free_ips":16777217}', NODE, START),
        "trace.jsonl:1: free_ips: Input should be less than or equal to 16777216",
    ),
    "header after events": BadFile(_trace(NODE, HEADER), "trace.jsonl:2: a header may only be the first line"),
    "header version 2": BadFile(
        _trace(b'{"type":"header","version":2}', NODE, START),
        "trace.jsonl:1: unsupported trace version 2 (this reader knows 1)",
    ),
    "header version true": BadFile(
        _trace(b'{"type":"header","version":true}', NODE, START),
        "trace.jsonl:1: version: Input should be a valid integer",
    ),
    "pod on a missing node": BadFile(
        _trace(START.replace(b'"t":1', b'"t":0')),
        "trace.jsonl:1: pod 'p1' starts on node 'n1', which is not present",
    ),
    "pod started twice": BadFile(
        _trace(
            NODE,
            START,
            b'{"t":2,"type":"pod_stop","node":"n1","pod":"p1"}',
            START.replace(b'"t":1', b'"t":3'),
        ),
        "trace.jsonl:4: pod 'p1' started twice",
    ),
    "stop of a pod not running": BadFile(
        _trace(NODE, START, b'{"t":2,"type":"pod_stop","node":"n1","pod":"p2"}'),
        "trace.jsonl:3: pod 'p2' stops but is not running",
    ),
    "node added twice": BadFile(_trace(NODE, NODE, START), "trace.jsonl:2: node 'n1' added twice"),
}

POLICY_HEAD = b"apiVersion: warmpool.io/v1alpha1\nkind: WarmPoolPolicy\nmetadata:\n  name: p\n"

BAD_POLICIES: dict[str, BadFile] = {
    "empty": BadFile(
        b"",
        "policy.yaml:1: empty: expected a WarmPoolPolicy manifest (apiVersion: warmpool.io/v1alpha1 and kind: "
        "WarmPoolPolicy)",
    ),
    "a ConfigMap": BadFile(
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n",
        "policy.yaml:2: apiVersion: v1, kind: ConfigMap is not a WarmPoolPolicy: expected apiVersion: "
        "warmpool.io/v1alpha1 and kind: WarmPoolPolicy",
    ),
    "a bare spec": BadFile(
        b"mode: Prefix\n",
        "policy.yaml:1: no apiVersion, no kind is not a WarmPoolPolicy: expected apiVersion: warmpool.io/v1alpha1 "
        "and kind: WarmPoolPolicy",
    ),
    "another API version": BadFile(
        b"apiVersion: warmpool.io/v1\nkind: WarmPoolPolicy\n",
        "policy.yaml:1: apiVersion: warmpool.io/v1, kind: WarmPoolPolicy is not a WarmPoolPolicy: expected "
        "apiVersion: warmpool.io/v1alpha1 and kind: WarmPoolPolicy",
    ),
    "a list": BadFile(
        b"- a\n- b\n",
        "policy.yaml:1: not a WarmPoolPolicy: expected a mapping with apiVersion: warmpool.io/v1alpha1 and kind: "
        "WarmPoolPolicy",
    ),
    "YAML syntax error": BadFile(
        POLICY_HEAD + b"spec:\n  manage: [\n",
        "policy.yaml:7: not valid YAML: while parsing a flow node expected the node content, but found '<stream end>'",
    ),
    "a tab for indentation": BadFile(
        POLICY_HEAD + b"spec:\n\tmode: Prefix\n",
        "policy.yaml:6: not valid YAML: while scanning for the next token found character '\\t' that cannot "
        "start any token",
    ),
    "not UTF-8": BadFile(POLICY_HEAD + b"spec:\n  mode: \xff\n", "policy.yaml:6: not UTF-8: byte 0xff at column 9"),
    "a key twice": BadFile(
        POLICY_HEAD + b"spec:\n  paused: true\n  paused: false\n", "policy.yaml:7: key 'paused' appears twice"
    ),
    "two documents": BadFile(
        POLICY_HEAD + b"---\n" + POLICY_HEAD,
        "policy.yaml:6: more than one YAML document: give one WarmPoolPolicy per file",
    ),
    "an alias bomb": BadFile(
        POLICY_HEAD
        + b"x0: &x0 [a, a, a, a, a, a, a, a, a, a]\n"
        + b"".join(f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]\n".encode() for i in range(1, 7)),
        "policy.yaml:5: more than 100000 YAML nodes once aliases are expanded",
    ),
    "deeply nested": BadFile(
        POLICY_HEAD + b"spec: " + b"[" * 20000 + b"]" * 20000 + b"\n",
        "policy.yaml:1: not valid YAML this reader takes: nested too deeply",
    ),
    "larger than 1 MiB": BadFile(
        POLICY_HEAD + b"#" * (1 << 20) + b"\n",
        "policy.yaml:1: larger than 1048576 bytes: a policy is a short YAML file",
    ),
    "unknown top-level field": BadFile(
        POLICY_HEAD + b"specs: {}\n",
        "policy.yaml:5: unknown field 'specs': a manifest has apiVersion, kind, metadata, spec, status",
    ),
    "spec is a string": BadFile(
        POLICY_HEAD + b"spec: fast\n", "policy.yaml:5: spec must be a mapping of the policy's fields"
    ),
    "every wrong field listed": BadFile(
        POLICY_HEAD
        + b"spec:\n"
        + b"  manage:\n"
        + b"  - {name: WARM_IP_TARGET, min: 5, max: 2}\n"
        + b"  churn:\n"
        + b"    burstWindow: ten seconds\n"
        + b"    colour: red\n"
        + b"  rollout:\n"
        + b"    interval: 1s\n",
        "policy.yaml:7: spec.manage[0]: min must not be greater than max: lower min or raise max (e.g. min: 2, "
        "max: 10); spec.churn.burstWindow: burstWindow must be a duration such as 30s or 1h30m: numbers each "
        "followed by a unit (h, m, s or ms), largest unit first (line 9); spec.churn.colour: unknown field: check "
        "its spelling against `warmpool crd` (line 10); spec.rollout.interval: interval must be between 10s and "
        "24h, e.g. 60s (line 12)",
    ),
    "a number as a string": BadFile(
        POLICY_HEAD + b"spec:\n  manage:\n  - name: WARM_IP_TARGET\n    min: '5'\n",
        "policy.yaml:8: spec.manage[0].min: Input should be a valid integer",
    ),
    "the freeze by bounds": BadFile(
        POLICY_HEAD + b"spec:\n  manage:\n  - {name: WARM_IP_TARGET, max: 0}\n  - {name: MINIMUM_IP_TARGET, min: 10}\n",
        "policy.yaml:7: spec.manage: WARM_IP_TARGET max: 0 with a MINIMUM_IP_TARGET that may be above 0 freezes "
        "nodes at the minimum (every further pod waits for an EC2 call): give WARM_IP_TARGET a max of at least 1, "
        "or MINIMUM_IP_TARGET max: 0",
    ),
    "two cross-field rules broken": BadFile(
        POLICY_HEAD + b"spec:\n  mode: Prefix\n  manage:\n  - name: WARM_ENI_TARGET\n  - name: MINIMUM_IP_TARGET\n",
        "policy.yaml:8: spec.manage: WARM_ENI_TARGET is not used in Prefix mode; manage WARM_PREFIX_TARGET or "
        "WARM_IP_TARGET instead; spec.manage: MINIMUM_IP_TARGET needs WARM_IP_TARGET managed too: alone it "
        "freezes nodes at the minimum and every further pod waits for an EC2 call; add {name: WARM_IP_TARGET} to "
        "manage",
    ),
    "a duration beyond Go's range": BadFile(
        POLICY_HEAD + b"spec:\n  rollout:\n    cooldown: 99999999999h\n",
        "policy.yaml:7: spec.rollout.cooldown: cooldown must be between 10s and 720h, e.g. 6h",
    ),
}

BAD_STATICS: dict[str, tuple[str, str]] = {
    "-1": (
        "-1",
        "--static: '-1': expected NAME=VALUE with NAME one of WARM_ENI_TARGET, WARM_IP_TARGET, "
        "MINIMUM_IP_TARGET, WARM_PREFIX_TARGET",
    ),
    "empty": (
        "",
        "--static: empty: give NAME=VALUE pairs separated by ',' (e.g. 'WARM_IP_TARGET=2,MINIMUM_IP_TARGET=5')",
    ),
    "abc": (
        "abc",
        "--static: 'abc': expected NAME=VALUE with NAME one of WARM_ENI_TARGET, WARM_IP_TARGET, "
        "MINIMUM_IP_TARGET, WARM_PREFIX_TARGET",
    ),
    "unknown name": (
        "WARM_IPS_TARGET=2",
        "--static: 'WARM_IPS_TARGET=2': expected NAME=VALUE with NAME one of "
        "WARM_ENI_TARGET, WARM_IP_TARGET, MINIMUM_IP_TARGET, WARM_PREFIX_TARGET",
    ),
    "lower-case name": (
        "warm_ip_target=2",
        "--static: 'warm_ip_target=2': expected NAME=VALUE with NAME one of "
        "WARM_ENI_TARGET, WARM_IP_TARGET, MINIMUM_IP_TARGET, WARM_PREFIX_TARGET",
    ),
    "negative": (
        "WARM_IP_TARGET=-1",
        "--static: WARM_IP_TARGET=-1: negative; ipamd would silently use its default (e.g. WARM_IP_TARGET=2)",
    ),
    "no value": (
        "WARM_IP_TARGET=",
        "--static: WARM_IP_TARGET has no value: give a whole number (e.g. WARM_IP_TARGET=2)",
    ),
    "letters": (
        "MINIMUM_IP_TARGET=abc",
        "--static: MINIMUM_IP_TARGET='abc': not a whole decimal number, which "
        "is all ipamd reads; it would silently use its default (e.g. MINIMUM_IP_TARGET=2)",
    ),
    "1e9": (
        "WARM_IP_TARGET=1e9",
        "--static: WARM_IP_TARGET='1e9': not a whole decimal number, which is all ipamd "
        "reads; it would silently use its default (e.g. WARM_IP_TARGET=2)",
    ),
    "3.5": (
        "WARM_ENI_TARGET=3.5",
        "--static: WARM_ENI_TARGET='3.5': not a whole decimal number, which is all "
        "ipamd reads; it would silently use its default (e.g. WARM_ENI_TARGET=2)",
    ),
    "a space in the value": (
        "WARM_IP_TARGET= 2",
        "--static: WARM_IP_TARGET=' 2': not a whole decimal number, "
        "which is all ipamd reads; it would silently use its default (e.g. WARM_IP_TARGET=2)",
    ),
    "above int64": (
        "WARM_IP_TARGET=9223372036854775808",
        "--static: WARM_IP_TARGET=9223372036854775808: above "
        "Go's int64 maximum 9223372036854775807; ipamd would silently use its default (e.g. 2)",
    ),
    "repeated name": ("WARM_IP_TARGET=1,WARM_IP_TARGET=2", "--static: WARM_IP_TARGET is given twice"),
    "semicolons": (
        "WARM_IP_TARGET=1;MINIMUM_IP_TARGET=2",
        "--static: 'WARM_IP_TARGET=1;MINIMUM_IP_TARGET=2': "
        "separate settings with ',' not ';' (e.g. 'WARM_IP_TARGET=2,MINIMUM_IP_TARGET=5')",
    ),
    "trailing comma": (
        "WARM_IP_TARGET=1,",
        "--static: 'WARM_IP_TARGET=1,': an empty setting between commas (e.g. 'WARM_IP_TARGET=2,MINIMUM_IP_TARGET=5')",
    ),
}
