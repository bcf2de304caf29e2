"""The last check before a write: the whole container env as the aws-node entrypoint and ipamd will read it.

See "Settings the operator must never write" in reference/vpc-cni.md. A problem refuses the write; a note is
worth reporting but is not caused by the values being written (a value someone else set that ipamd ignores).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from warmpool.ipamd.entrypoint import prefix_targets_all_zero, start_refusals
from warmpool.ipamd.env import (
    ENABLE_PREFIX_DELEGATION,
    MINIMUM_IP_TARGET,
    TARGET_NAMES,
    WARM_ENI_TARGET,
    WARM_IP_TARGET,
    WARM_PREFIX_TARGET,
    IpamdTargets,
    go_parse_bool,
    ignored_value,
    max_eni_from_env,
    mode_from_env,
    parse_env,
)
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.ipamd.version import ENI_REQUEST_CAPPED_SINCE, CniVersion, eni_request_uncapped

_NAME = TypeVar("_NAME", bound=str)


class ProblemKind(StrEnum):
    """What goes wrong on the nodes; CamelCase so it can serve as a condition or Event reason."""

    WONT_START = "AwsNodeWontStart"  # the entrypoint exits: aws-node never gets ready
    PREFIX_ALL_ZERO = "PrefixTargetsAllZero"  # ipamd runs prefix mode with every target 0 (unsupported)
    FREEZE = "NodesFreeze"  # MINIMUM_IP_TARGET without WARM_IP_TARGET: nodes never grow past the minimum
    IGNORED = "ValueIgnored"  # ipamd silently uses its default instead
    BEYOND_LIMITS = "BeyondInstanceLimits"  # more than the smallest instance type in scope can hold
    SLOW_NEW_ENIS = "SlowNewEnis"  # VPC CNI issue #1872: new ENIs take minutes to become usable


@dataclass(frozen=True, slots=True)
class SafetyProblem:
    kind: ProblemKind
    variable: str | None
    message: str


@dataclass(frozen=True, slots=True)
class EnvVerdict:
    """How aws-node and ipamd will run with one container env."""

    mode: IpMode  # the mode ipamd runs on Nitro nodes (other nodes fall back to secondary IPs)
    targets: IpamdTargets  # the targets as ipamd parses them
    problems: tuple[SafetyProblem, ...]  # any one refuses the write
    notes: tuple[SafetyProblem, ...] = ()  # reported, not refused: not caused by the written values

    @property
    def safe(self) -> bool:
        return not self.problems

    def messages(self) -> list[str]:
        return [p.message for p in self.problems]


def merge_env(current: Mapping[str, str], values: Mapping[_NAME, int], release: Iterable[str] = ()) -> dict[str, str]:
    """The container env after an apply: `values` written (as decimal text), `release`d entries removed."""
    gone = set(release)
    out = {k: v for k, v in current.items() if k not in gone}
    out.update({str(name): str(value) for name, value in values.items()})
    return out


def check_env(
    env: Mapping[str, str],
    limits: Iterable[InstanceLimits] = (),
    cni_version: CniVersion | None = None,
    *,
    cautious: bool = True,
    allow_freeze: bool = False,
    written: Iterable[str] | None = None,
) -> EnvVerdict:
    """Evaluate the whole resulting container env.

    `limits`: the instance types in scope (each is checked in the mode ipamd runs on it, with no more ENIs than
    MAX_ENI allows; the smallest binds).
    `cni_version`: the VPC CNI running (`cni_version_from_image`); unknown counts as one before the #1872 fix
    when `cautious`. `allow_freeze`: the policy asks for MINIMUM_IP_TARGET without WARM_IP_TARGET.
    `written`: the entries this write sets; values ipamd ignores or that exceed the limits are refused only
    there (elsewhere they are notes). Outcomes (aws-node does not start, nodes freeze, prefix mode with every
    target 0) are refused whoever set the values, since the write rolls them out to every node."""
    mode = mode_from_env(env)
    targets = parse_env(env)
    scope = set(TARGET_NAMES if written is None else (str(n) for n in written))
    problems: list[SafetyProblem] = []
    notes: list[SafetyProblem] = []

    def value_problem(kind: ProblemKind, name: str, message: str) -> None:
        (problems if name in scope else notes).append(SafetyProblem(kind, name, message))

    for name, why in start_refusals(env):
        problems.append(SafetyProblem(ProblemKind.WONT_START, name, f"aws-node would not start: {why}"))

    for name in TARGET_NAMES:
        raw = env.get(name)
        if raw is not None and (ignored := ignored_value(name, raw)) is not None:
            value_problem(ProblemKind.IGNORED, name, ignored)
    raw_mode = env.get(ENABLE_PREFIX_DELEGATION)
    if raw_mode is not None and go_parse_bool(raw_mode) is None:
        notes.append(
            SafetyProblem(
                ProblemKind.IGNORED,
                ENABLE_PREFIX_DELEGATION,
                f"{ENABLE_PREFIX_DELEGATION}={raw_mode!r} is not a Go boolean: ipamd runs secondary-IP mode",
            )
        )

    if targets.minimum_ip > 0 and targets.warm_ip == 0 and not allow_freeze:
        problems.append(
            SafetyProblem(
                ProblemKind.FREEZE,
                WARM_IP_TARGET,
                f"MINIMUM_IP_TARGET={targets.minimum_ip} without WARM_IP_TARGET freezes nodes at the minimum: "
                "every further pod waits until another frees an IP",
            )
        )

    types = [lim.with_max_eni(max_eni_from_env(env)) for lim in _distinct(limits)]
    modes = {lim.runs_mode(mode) for lim in types} if types else {mode}
    if (
        IpMode.PREFIX in modes
        and not prefix_targets_all_zero(env)
        and targets.warm_prefix == 0
        and not targets.ip_targets_defined
    ):
        problems.append(
            SafetyProblem(
                ProblemKind.PREFIX_ALL_ZERO,
                WARM_PREFIX_TARGET,
                "ipamd would run prefix mode with WARM_PREFIX_TARGET, WARM_IP_TARGET and MINIMUM_IP_TARGET all 0 "
                "(unsupported: it frees every wholly free prefix and allocates again)",
            )
        )

    uncapped = eni_request_uncapped(cni_version, cautious=cautious)
    for lim in types:
        for kind, name, why in _limit_problems(lim, lim.runs_mode(mode), targets, uncapped):
            if name in env:
                value_problem(kind, name, why + _version_note(kind, cni_version))
    return EnvVerdict(mode, targets, tuple(problems), tuple(notes))


def _limit_problems(
    lim: InstanceLimits, mode: IpMode, targets: IpamdTargets, uncapped: bool
) -> Iterable[tuple[ProblemKind, str, str]]:
    pod_ips = lim.pod_ip_cap(mode)
    where = f"{lim.instance_type} ({'prefix' if mode is IpMode.PREFIX else 'secondary-IP'} mode)"
    for name, value in ((WARM_IP_TARGET, targets.warm_ip), (MINIMUM_IP_TARGET, targets.minimum_ip)):
        if value > pod_ips:
            yield ProblemKind.BEYOND_LIMITS, name, f"{name}={value} is above the {pod_ips} pod IPs of {where}"
    if mode is IpMode.SECONDARY and targets.warm_eni > lim.max_enis:
        yield (
            ProblemKind.BEYOND_LIMITS,
            WARM_ENI_TARGET,
            f"WARM_ENI_TARGET={targets.warm_eni} is above the {lim.max_enis} ENIs of {where}",
        )
    if mode is IpMode.PREFIX and targets.warm_prefix > lim.max_enis * lim.slots_per_eni:
        yield (
            ProblemKind.BEYOND_LIMITS,
            WARM_PREFIX_TARGET,
            f"WARM_PREFIX_TARGET={targets.warm_prefix} is above the {lim.max_enis * lim.slots_per_eni} prefixes "
            f"of {where}",
        )
    if not uncapped:
        return
    # A new ENI is asked for max(WARM_IP_TARGET - available, MINIMUM_IP_TARGET - total) addresses, and only once
    # every attached ENI is full (so total >= one ENI's worth): within one ENI's worth when WARM_IP_TARGET is,
    # and MINIMUM_IP_TARGET is within two. Without IP targets, prefix mode asks for WARM_PREFIX_TARGET prefixes.
    eni_ips = lim.ips_per_eni(mode)
    slow = "new ENIs wait minutes for addresses they cannot hold (VPC CNI issue #1872)"
    if targets.warm_ip > eni_ips:
        yield (
            ProblemKind.SLOW_NEW_ENIS,
            WARM_IP_TARGET,
            (f"WARM_IP_TARGET={targets.warm_ip} is above one ENI's {eni_ips} IPs on {where}: {slow}"),
        )
    if targets.minimum_ip > 2 * eni_ips:
        yield (
            ProblemKind.SLOW_NEW_ENIS,
            MINIMUM_IP_TARGET,
            (f"MINIMUM_IP_TARGET={targets.minimum_ip} is above two ENIs' {2 * eni_ips} IPs on {where}: {slow}"),
        )
    if mode is IpMode.PREFIX and not targets.ip_targets_defined and targets.warm_prefix > lim.slots_per_eni:
        yield (
            ProblemKind.SLOW_NEW_ENIS,
            WARM_PREFIX_TARGET,
            (
                f"WARM_PREFIX_TARGET={targets.warm_prefix} is above one ENI's {lim.slots_per_eni} prefixes on {where}: "
                f"{slow}"
            ),
        )


def _version_note(kind: ProblemKind, version: CniVersion | None) -> str:
    if kind is not ProblemKind.SLOW_NEW_ENIS:
        return ""
    if version is None:
        return f"; the VPC CNI version is unknown, so assumed older than {ENI_REQUEST_CAPPED_SINCE}"
    return f"; VPC CNI {version} is older than {ENI_REQUEST_CAPPED_SINCE}"


def _distinct(limits: Iterable[InstanceLimits]) -> list[InstanceLimits]:
    return sorted({lim.instance_type: lim for lim in limits}.values(), key=lambda lim: lim.instance_type)


def unsafe_settings(
    targets: IpamdTargets,
    mode: IpMode,
    smallest_limits: InstanceLimits | None,
    *,
    env: Mapping[str, str] | None = None,
    allow_freeze: bool = False,
) -> list[str]:
    """Compatibility wrapper for callers that hold parsed targets (the step should call `check_env` on the
    whole env instead): the problems of the env these targets and this mode stand for. `env`, when given,
    holds the written raw entries, checked for values ipamd ignores."""
    full = {**targets.as_env(), ENABLE_PREFIX_DELEGATION: "true" if mode is IpMode.PREFIX else "false"}
    full.update(env or {})
    verdict = check_env(
        full,
        [smallest_limits] if smallest_limits is not None else [],
        allow_freeze=allow_freeze,
        written=None if env is None else list(env),
    )
    return verdict.messages()
