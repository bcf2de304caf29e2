"""String formats the API shares with Kubernetes and Go, as pure predicates.

Each predicate answers exactly what the API server's CEL answers for the same string, so a pydantic validator
built on it agrees with the CRD's rule (tests/policy_cases.py holds both to one table):

- the Kubernetes names of `k8s.io/apimachinery` (`format.dns1123Label()`, `format.dns1123Subdomain()`,
  `format.qualifiedName()`, `format.labelValue()` in the API server's CEL format library);
- durations in the subset of Go's `time.ParseDuration` syntax the API accepts (`duration()` in CEL).
"""

from __future__ import annotations

import re
from enum import StrEnum

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL)
_DNS1123_SUBDOMAIN_RE = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*")
_LABEL_NAME_RE = re.compile("([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_NAME_MAX = 63
LABEL_VALUE_MAX = 63
# An optional DNS subdomain prefix, '/', and a name: the longest a qualified name (label key) can be.
QUALIFIED_NAME_MAX = DNS1123_SUBDOMAIN_MAX + 1 + LABEL_NAME_MAX


class KubeFormat(StrEnum):
    """Names of the formats in the API server's CEL format library (`format.<name>()`)."""

    DNS1123_LABEL = "dns1123Label"
    DNS1123_SUBDOMAIN = "dns1123Subdomain"
    QUALIFIED_NAME = "qualifiedName"
    LABEL_VALUE = "labelValue"


def is_dns1123_label(value: str) -> bool:
    return len(value) <= DNS1123_LABEL_MAX and _DNS1123_LABEL_RE.fullmatch(value) is not None


def is_dns1123_subdomain(value: str) -> bool:
    return len(value) <= DNS1123_SUBDOMAIN_MAX and _DNS1123_SUBDOMAIN_RE.fullmatch(value) is not None


def _is_label_name(value: str) -> bool:
    return len(value) <= LABEL_NAME_MAX and _LABEL_NAME_RE.fullmatch(value) is not None


def is_qualified_name(value: str) -> bool:
    """A label key: `name` or `prefix/name`, the prefix a DNS-1123 subdomain (IsQualifiedName)."""
    parts = value.split("/")
    if len(parts) == 1:
        return _is_label_name(parts[0])
    if len(parts) == 2:
        return is_dns1123_subdomain(parts[0]) and _is_label_name(parts[1])
    return False


def is_label_value(value: str) -> bool:
    """Empty, or a label name (IsValidLabelValue)."""
    return value == "" or _is_label_name(value)


CHECKS = {
    KubeFormat.DNS1123_LABEL: is_dns1123_label,
    KubeFormat.DNS1123_SUBDOMAIN: is_dns1123_subdomain,
    KubeFormat.QUALIFIED_NAME: is_qualified_name,
    KubeFormat.LABEL_VALUE: is_label_value,
}


# ----- durations -----

# Units in Go's order of size, each at most once, largest first ("1h30m", never "30m1h"): a number with an
# optional fraction, then the unit. Go accepts more (signs, "us", ".5s", any order); the API takes this subset,
# which every human-written duration fits and which parses identically in Go, CEL and here.
_UNITS_NS = {"h": 3_600_000_000_000, "m": 60_000_000_000, "s": 1_000_000_000, "ms": 1_000_000}
_NUMBER = r"[0-9]+(\.[0-9]+)?"
DURATION_SYNTAX = "^" + "".join(f"({_NUMBER}{u})?" for u in _UNITS_NS) + "$"
# The same with digits capped so that no match can overflow Go's int64 nanoseconds (max ~2562047h): at most
# 999999h + 9999999m + 999999999s + 999999999ms with 9-digit fractions, about 1.47M hours. CEL's duration()
# is only called on strings that match this, so it never fails with a type conversion error.
_SAFE_DIGITS = {"h": 6, "m": 7, "s": 9, "ms": 9}
DURATION_SAFE = "^" + "".join(f"([0-9]{{1,{n}}}(\\.[0-9]{{1,9}})?{u})?" for u, n in _SAFE_DIGITS.items()) + "$"
_PART = re.compile(r"([0-9]+)(?:\.([0-9]+))?(ms|h|m|s)")
_SYNTAX_RE = re.compile(DURATION_SYNTAX)
_SAFE_RE = re.compile(DURATION_SAFE)


def is_duration(text: str) -> bool:
    """Whether `text` is written as the API's durations are: 30s, 5m, 1h30m, 1.5h, 500ms (not empty)."""
    return text != "" and _SYNTAX_RE.fullmatch(text) is not None


def duration_ns(text: str) -> int | None:
    """Nanoseconds as Go's time.ParseDuration computes them (fractions below a nanosecond dropped), or None
    when `text` is not a duration or is too large to be held safely in Go's time.Duration."""
    if not is_duration(text) or _SAFE_RE.fullmatch(text) is None:
        return None
    total = 0
    for whole, fraction, unit in _PART.findall(text):
        scale = _UNITS_NS[unit]
        total += int(whole) * scale
        if fraction:
            # Go: v += uint64(float64(f) * (float64(unit) / scale)), with f the fraction's digits as an integer.
            total += int(float(int(fraction)) * (scale / 10 ** len(fraction)))
    return total


def parse_duration(text: str) -> float:
    """Seconds in a duration string ("1h30m" -> 5400.0). Raises ValueError on anything else."""
    ns = duration_ns(text)
    if ns is None:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 1h30m")
    return ns / 1e9
