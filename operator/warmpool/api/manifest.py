"""Reading a WarmPoolPolicy manifest from a YAML file, as `kubectl apply` would take it, with every problem
reported as one `PolicyFileError` that names the line: for `warmpool simulate --policy` and any other tool
that reads policies from disk. The spec goes through the same models (and so the same rules) as the API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydantic
import yaml

from warmpool.api.rules import FIELD_PATHS
from warmpool.api.v1alpha1 import API_VERSION, KIND, WarmPoolPolicySpec

MAX_POLICY_BYTES = 1 << 20  # the API server takes at most ~1.5 MB per object; a policy is a few hundred bytes
MAX_YAML_NODES = 100_000  # after expanding aliases, so an alias bomb is refused before it is built
_TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec", "status"}
_WANTED = f"apiVersion: {API_VERSION} and kind: {KIND}"


class PolicyFileError(ValueError):
    """What is wrong with a policy file, and on which line (1-based)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PolicyFileError(line, f"not UTF-8: byte 0x{data[exc.start]:02x} at column {column}") from None


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _check_nodes(root: yaml.Node) -> None:
    """Repeated keys (YAML would keep the last silently) and the size after aliases are expanded."""
    count = 0
    stack = [root]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_YAML_NODES:
            raise PolicyFileError(_line(node), f"more than {MAX_YAML_NODES} YAML nodes once aliases are expanded")
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        raise PolicyFileError(_line(key), f"key {key.value!r} appears twice")
                    seen.add(key.value)
                stack.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _yaml_error(exc: yaml.YAMLError) -> PolicyFileError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else 1
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        return PolicyFileError(line, f"not valid YAML: {problem}")
    return PolicyFileError(1, f"not valid YAML: {exc}")


def _compose(text: str) -> yaml.Node:
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise _yaml_error(exc) from None
    except RecursionError:
        raise PolicyFileError(1, "not valid YAML this reader takes: nested too deeply") from None
    documents = [d for d in documents if d is not None]
    if not documents:
        raise PolicyFileError(1, f"empty: expected a WarmPoolPolicy manifest ({_WANTED})")
    if len(documents) > 1:
        raise PolicyFileError(_line(documents[1]), "more than one YAML document: give one WarmPoolPolicy per file")
    _check_nodes(documents[0])
    return documents[0]


def _child(node: yaml.Node | None, key: Any) -> yaml.Node | None:
    found: yaml.Node | None = None
    if isinstance(node, yaml.MappingNode):
        found = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(key)), None)
    elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        found = node.value[key]
    return found


def _line_of(root: yaml.Node, path: tuple[Any, ...]) -> int:
    """The line of the deepest node the path reaches (a missing field: its parent's line)."""
    node, line = root, _line(root)
    for key in path:
        child = _child(node, key)
        if child is None:
            break
        node, line = child, _line(child)
    return line


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field: check its spelling against `warmpool crd`"
    return str(error["msg"]).removeprefix("Value error, ")


def _spec_errors(root: yaml.Node, spec_node: yaml.Node | None, exc: pydantic.ValidationError) -> PolicyFileError:
    """Every field that is wrong, in file order, on one line; the error's line is the first one's."""
    found: list[tuple[int, str]] = []
    for error in exc.errors(include_url=False):
        path = tuple(p for p in error["loc"] if p != "[key]")
        message = _message(error)
        # A whole-object rule that names its field (fieldPath) is reported there, as the API server does.
        named = [(m, p) for m, p in FIELD_PATHS.items() if error["type"] == "value_error" and m in message]
        for text, field_path in named or [(message, "")]:
            at = path + tuple(part for part in field_path.split(".") if part)
            line = _line_of(spec_node, at) if spec_node is not None else _line(root)
            where = ".".join(["spec", *(f"[{p}]" if isinstance(p, int) else str(p) for p in at)]).replace(".[", "[")
            found.append((line, f"{where}: {text}"))
    found.sort(key=lambda item: item[0])
    first = found[0][0]
    parts = [text if line == first else f"{text} (line {line})" for line, text in found]
    return PolicyFileError(first, "; ".join(parts))


def parse_policy(data: bytes) -> WarmPoolPolicySpec:
    """The spec of a WarmPoolPolicy manifest given as YAML bytes. Raises PolicyFileError."""
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyFileError(1, f"larger than {MAX_POLICY_BYTES} bytes: a policy is a short YAML file")
    root = _compose(_text(data))
    if not isinstance(root, yaml.MappingNode):
        raise PolicyFileError(_line(root), f"not a WarmPoolPolicy: expected a mapping with {_WANTED}")
    try:
        manifest: dict[Any, Any] = yaml.SafeLoader("").construct_document(root)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc) from None
    except RecursionError:
        raise PolicyFileError(_line(root), "not valid YAML this reader takes: nested too deeply") from None
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    if (api_version, kind) != (API_VERSION, KIND):
        node = _child(root, "kind") if kind != KIND else _child(root, "apiVersion")
        got = ", ".join(
            f"{key}: {value}" if value is not None else f"no {key}"
            for key, value in (("apiVersion", api_version), ("kind", kind))
        )
        raise PolicyFileError(
            _line(node) if node is not None else _line(root), f"{got} is not a WarmPoolPolicy: expected {_WANTED}"
        )
    for key in manifest:
        if key not in _TOP_LEVEL:
            node = _child(root, key)
            raise PolicyFileError(
                _line(node or root), f"unknown field {key!r}: a manifest has {', '.join(sorted(_TOP_LEVEL))}"
            )
    spec = manifest.get("spec")
    spec_node = _child(root, "spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise PolicyFileError(_line(spec_node or root), "spec must be a mapping of the policy's fields")
    try:
        # As JSON and strict, as the API server sees it: "5" is not a number and "true" not a boolean.
        return WarmPoolPolicySpec.model_validate_json(json.dumps(spec, default=str), strict=True)
    except pydantic.ValidationError as exc:
        raise _spec_errors(root, spec_node, exc) from None
    except RecursionError:
        raise PolicyFileError(_line(spec_node or root), "spec nested too deeply") from None


def read_policy(path: str | Path) -> WarmPoolPolicySpec:
    with open(path, "rb") as fp:
        data = fp.read(MAX_POLICY_BYTES + 1)
    return parse_policy(data)
