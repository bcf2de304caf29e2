"""Validation rules written once for both enforcers: the API server (CEL in the generated CRD) and pydantic.

A `Rule` holds one constraint as a CEL expression and as a Python predicate, side by side, with the one message
a person sees from either. Models list their rules in `RULES` (whole-object rules) or attach them to a field with
`field_rules(...)`; `crd.py` emits the CEL, the model validators run the predicates. The tests feed one table of
good and bad policies (tests/policy_cases.py) to the models and to a real kube-apiserver and expect the same
verdict and message from both, so the two halves cannot drift apart unnoticed.

What the API server's CEL offers here (kube-apiserver v1.35, checked on the real one): `message`, `fieldPath`,
`reason`, `messageExpression`, `duration()`, and the `format.<name>().validate()` library for Kubernetes names.
`messageExpression` is not used: fixed messages cost nothing in the CEL budget and say just as much.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import AfterValidator, Field
from pydantic.config import JsonDict

from warmpool.api import formats


@dataclass(frozen=True, slots=True)
class Rule:
    """`cel` and `check` are true for valid values; `message` says what to type instead."""

    cel: str
    check: Callable[[Any], bool]
    message: str
    field_path: str | None = None  # CEL fieldPath, e.g. ".manage": where the API server reports the error
    reason: str | None = None  # FieldValueRequired, FieldValueForbidden, ...; the API server's default is Invalid

    def as_cel(self) -> JsonDict:
        out: JsonDict = {"rule": self.cel, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        if self.reason:
            out["reason"] = self.reason
        return out

    def __post_init__(self) -> None:
        if self.field_path:
            FIELD_PATHS[self.message] = self.field_path


# message -> fieldPath of every whole-object rule that names one: a pydantic error can only point at the object,
# so readers that report locations (api/manifest.py) move it to the field the API server would name.
FIELD_PATHS: dict[str, str] = {}


def violations(rules: tuple[Rule, ...], value: Any) -> list[str]:
    return [r.message for r in rules if not r.check(value)]


def enforce(rules: tuple[Rule, ...], value: Any) -> None:
    failed = violations(rules, value)
    if failed:
        raise ValueError("; ".join(failed))


def field_rules(*rules: Rule) -> tuple[Any, Any]:
    """Annotated metadata that puts `rules` on one field, for the CRD and for pydantic."""

    def check(value: Any) -> Any:
        enforce(rules, value)
        return value

    return Field(json_schema_extra={"x-kubernetes-validations": [r.as_cel() for r in rules]}), AfterValidator(check)


def kube_format(kind: formats.KubeFormat, message: str) -> Rule:
    """A string that must be a Kubernetes name of the given format."""
    check = formats.CHECKS[kind]
    return Rule(f"!format.{kind.value}().validate(self).hasValue()", check, message)


def _ns(text: str) -> int:
    ns = formats.duration_ns(text)
    if ns is None:
        raise ValueError(f"{text!r} is not a duration")
    return ns


def duration_rules(name: str, low: str, high: str, example: str) -> tuple[Rule, Rule]:
    """A duration field: written as the API writes durations, and within [low, high]."""
    syntax, safe = formats.DURATION_SYNTAX, formats.DURATION_SAFE
    lo, hi = _ns(low), _ns(high)

    def in_range(value: str) -> bool:
        if not formats.is_duration(value):
            return True  # the syntax rule reports it
        ns = formats.duration_ns(value)
        return ns is not None and lo <= ns <= hi

    written = Rule(
        f"self != '' && self.matches(r'{syntax}')",
        formats.is_duration,
        f"{name} must be a duration such as {example} or 1h30m: numbers each followed by a unit (h, m, s or ms), "
        "largest unit first",
    )
    # The safe pattern before duration(): it is only reached for strings Go's time.Duration can hold.
    within = Rule(
        f"self == '' || !self.matches(r'{syntax}') || (self.matches(r'{safe}') && "
        f"duration(self) >= duration('{low}') && duration(self) <= duration('{high}'))",
        in_range,
        f"{name} must be between {low} and {high}, e.g. {example}",
    )
    return written, within


def durations_compare(
    fields: dict[str, str], cel: str, compare: Callable[..., bool], message: str, field_path: str | None = None
) -> Rule:
    """A whole-object rule comparing duration fields (CEL name -> Python attribute, in `compare`'s argument
    order, each given in nanoseconds). Silent while one of them is malformed or out of Go's range: the fields'
    own rules report that, and CEL would only add a 'type conversion error'."""
    guard = " && ".join(f"self.{f} != '' && self.{f}.matches(r'{formats.DURATION_SAFE}')" for f in fields)

    def check(obj: Any) -> bool:
        values = [formats.duration_ns(getattr(obj, attr)) for attr in fields.values()]
        return any(v is None for v in values) or compare(*values)

    return Rule(f"!({guard}) || ({cel})", check, message, field_path)
