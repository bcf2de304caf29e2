"""The WarmPoolPolicy API, version v1alpha1.

These pydantic models are the single source of truth: the CRD (`warmpool crd`, `crds/warmpoolpolicies.yaml`)
is generated from them, and the operator parses every policy through them. Every cross-field rule is written
twice on purpose: as a CEL rule the API server enforces on admission (so a bad policy never lands) and as a
pydantic validator (so the operator never acts on one that slipped in before the CRD was updated). The unit
tests keep the two in step with one table of good and bad examples.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP = "warmpool.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "WarmPoolPolicy"
PLURAL = "warmpoolpolicies"
SINGULAR = "warmpoolpolicy"
SHORT_NAMES = ["wpp"]

# Go-style durations as accepted by Kubernetes' CEL `duration()` and by humans: 30s, 5m, 1h30m, 500ms.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

# The largest value any of the four targets can usefully take: max pods of the biggest instance types (737 in
# secondary-IP mode, 250 recommended in prefix mode) rounded up. Above this a value can only be a typo.
MAX_TARGET_VALUE = 1000


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration string ("1h30m" -> 5400.0). Raises ValueError on anything else."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 1h30m")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)]


def _duration_rule(fields: tuple[str, ...], comparison: str, message: str) -> JsonDict:
    """A CEL rule comparing durations that stays silent when a field is malformed: the schema's pattern
    already reports that, and CEL would only add a 'type conversion error'."""
    guard = " && ".join(f"self.{f}.matches(r'{DURATION_PATTERN}')" for f in fields)
    return {"rule": f"!({guard}) || ({comparison})", "message": message}


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error, as the API server prunes them."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Variable(StrEnum):
    """The ipamd environment variables warmpool can own."""

    WARM_ENI_TARGET = "WARM_ENI_TARGET"
    WARM_IP_TARGET = "WARM_IP_TARGET"
    MINIMUM_IP_TARGET = "MINIMUM_IP_TARGET"
    WARM_PREFIX_TARGET = "WARM_PREFIX_TARGET"


class Mode(StrEnum):
    AUTO = "Auto"
    SECONDARY_IP = "SecondaryIP"
    PREFIX = "Prefix"


class TargetRef(_Model):
    """The DaemonSet and container whose env ipamd reads."""

    namespace: str = Field("kube-system", min_length=1, max_length=63, description="Namespace of the DaemonSet.")
    name: str = Field("aws-node", min_length=1, max_length=253, description="Name of the DaemonSet.")
    container: str = Field("aws-node", min_length=1, max_length=63, description="Container running ipamd.")


class LabelSelectorRequirement(_Model):
    key: str = Field(min_length=1, max_length=317)
    operator: str = Field(json_schema_extra={"enum": ["In", "NotIn", "Exists", "DoesNotExist"]})
    values: list[str] = Field(default_factory=list, max_length=64)

    @field_validator("operator")
    @classmethod
    def _known_operator(cls, value: str) -> str:
        if value not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError("operator must be one of In, NotIn, Exists, DoesNotExist")
        return value


class LabelSelector(_Model):
    """A Kubernetes label selector; empty selects every node."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list, max_length=32)


class ManagedVariable(_Model):
    """One ipamd variable warmpool owns, with the bounds its recommendation is clamped to."""

    name: Variable = Field(description="The aws-node env variable warmpool owns.")
    min: int = Field(0, ge=0, le=MAX_TARGET_VALUE, description="Lowest value warmpool may write.")
    max: int | None = Field(
        None,
        ge=0,
        le=MAX_TARGET_VALUE,
        description="Highest value warmpool may write; unset means the instance limits decide.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.max) || self.min <= self.max",
                    "message": "min must not be greater than max",
                }
            ]
        }
    )

    @model_validator(mode="after")
    def _min_not_above_max(self) -> ManagedVariable:
        if self.max is not None and self.min > self.max:
            raise ValueError(f"{self.name}: min must not be greater than max")
        return self


def _default_manage() -> list[ManagedVariable]:
    # AWS's advice for clusters that care about subnet space: a small WARM_IP_TARGET plus a MINIMUM_IP_TARGET
    # near the typical pod density. Both work in secondary-IP and prefix mode, so they suit mode Auto.
    return [
        ManagedVariable(name=Variable.WARM_IP_TARGET),
        ManagedVariable(name=Variable.MINIMUM_IP_TARGET),
    ]


class Churn(_Model):
    """How observed pod starts turn into a warm pool size."""

    burst_quantile: float = Field(
        0.999,
        gt=0,
        le=1,
        description="Share of pod starts that must find a free IP without waiting, in (0, 1]; 0.999 lets one "
        "in a thousand wait for an EC2 call.",
    )
    burst_window: Duration = Field(
        "30s",
        description="Time a spare IP must cover: how long ipamd takes to refill the pool (EC2 call, new ENI).",
    )
    half_life: Duration = Field(
        "24h", description="Half-life of the burst history: older behaviour fades with this period."
    )
    headroom_ips: int = Field(
        1, ge=0, le=100, alias="headroomIPs", description="Spare IPs added on top of the covered burst."
    )
    headroom_ratio: float = Field(
        0.0, ge=0, le=1, description="Share of the covered burst added on top of it (0.2 = 20% more)."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _duration_rule(
                    ("burstWindow",),
                    "duration(self.burstWindow) >= duration('1s')",
                    "burstWindow must be at least 1s",
                ),
                _duration_rule(
                    ("burstWindow", "halfLife"),
                    "duration(self.halfLife) > duration(self.burstWindow)",
                    "halfLife must be longer than burstWindow",
                ),
            ]
        }
    )

    @field_validator("burst_window", "half_life")
    @classmethod
    def _durations(cls, value: str) -> str:
        return _check_duration(value)

    @model_validator(mode="after")
    def _windows(self) -> Churn:
        if parse_duration(self.burst_window) < 1:
            raise ValueError("burstWindow must be at least 1s")
        if parse_duration(self.half_life) <= parse_duration(self.burst_window):
            raise ValueError("halfLife must be longer than burstWindow")
        return self


class Rollout(_Model):
    """Guards on changing the DaemonSet: every change restarts aws-node on every node."""

    cooldown: Duration = Field("6h", description="Minimum time between two changes of the DaemonSet env.")
    dead_band: int = Field(
        2, ge=0, le=100, description="Smallest change of a value (in IPs or prefixes) worth a rollout."
    )
    dead_band_ratio: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Smallest relative change worth a rollout (0.2 = 20% of the current value).",
    )
    quiet_period: Duration = Field(
        "10m", description="Churn must have stayed low this long before a change is applied."
    )
    interval: Duration = Field("60s", description="How often the policy is re-planned.")
    allow_foreign_owner: bool = Field(
        False,
        description=(
            "Take over env entries owned by another field manager (the EKS add-on, a GitOps tool). "
            "Off by default: the other owner would revert or fight the change."
        ),
    )

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _duration_rule(
                    ("interval",),
                    "duration(self.interval) >= duration('10s')",
                    "interval must be at least 10s",
                ),
                _duration_rule(
                    ("interval", "cooldown"),
                    "duration(self.cooldown) >= duration(self.interval)",
                    "cooldown must not be shorter than interval",
                ),
            ]
        }
    )

    @field_validator("cooldown", "quiet_period", "interval")
    @classmethod
    def _durations(cls, value: str) -> str:
        return _check_duration(value)

    @model_validator(mode="after")
    def _intervals(self) -> Rollout:
        if parse_duration(self.interval) < 10:
            raise ValueError("interval must be at least 10s")
        if parse_duration(self.cooldown) < parse_duration(self.interval):
            raise ValueError("cooldown must not be shorter than interval")
        return self


# Cross-field rules on the spec, shared by the CEL schema and the pydantic validator below.
_SPEC_RULES: list[tuple[str, str]] = [
    (
        "!(self.manage.exists(m, m.name == 'WARM_ENI_TARGET') && self.manage.exists(m, m.name == 'WARM_IP_TARGET'))",
        "WARM_ENI_TARGET and WARM_IP_TARGET cannot both be managed: ipamd ignores WARM_ENI_TARGET "
        "when WARM_IP_TARGET is set",
    ),
    (
        "!(self.manage.exists(m, m.name == 'WARM_PREFIX_TARGET') && self.manage.exists(m, m.name == 'WARM_IP_TARGET'))",
        "WARM_PREFIX_TARGET and WARM_IP_TARGET cannot both be managed: ipamd ignores WARM_PREFIX_TARGET "
        "when WARM_IP_TARGET is set",
    ),
    (
        "!(self.mode == 'Prefix' && self.manage.exists(m, m.name == 'WARM_ENI_TARGET'))",
        "WARM_ENI_TARGET is not used in Prefix mode; manage WARM_PREFIX_TARGET or WARM_IP_TARGET instead",
    ),
    (
        "!(self.mode == 'SecondaryIP' && self.manage.exists(m, m.name == 'WARM_PREFIX_TARGET'))",
        "WARM_PREFIX_TARGET is only used in Prefix mode",
    ),
    (
        "!self.manage.exists(m, m.name == 'MINIMUM_IP_TARGET') || self.manage.exists(m, m.name == 'WARM_IP_TARGET')",
        "MINIMUM_IP_TARGET needs WARM_IP_TARGET managed too: alone it freezes nodes at the minimum and every "
        "further pod waits for an EC2 call",
    ),
]


def _spec_rule_violations(spec: WarmPoolPolicySpec) -> list[str]:
    managed = {m.name for m in spec.manage}
    checks = [
        not {Variable.WARM_ENI_TARGET, Variable.WARM_IP_TARGET} <= managed,
        not {Variable.WARM_PREFIX_TARGET, Variable.WARM_IP_TARGET} <= managed,
        not (spec.mode == Mode.PREFIX and Variable.WARM_ENI_TARGET in managed),
        not (spec.mode == Mode.SECONDARY_IP and Variable.WARM_PREFIX_TARGET in managed),
        Variable.MINIMUM_IP_TARGET not in managed or Variable.WARM_IP_TARGET in managed,
    ]
    return [message for ok, (_, message) in zip(checks, _SPEC_RULES, strict=True) if not ok]


class WarmPoolPolicySpec(_Model):
    """What a platform team asks of warmpool for one aws-node DaemonSet."""

    target_ref: TargetRef = Field(default_factory=TargetRef)
    node_selector: LabelSelector = Field(
        default_factory=LabelSelector, description="Nodes whose churn counts; empty selects all nodes."
    )
    mode: Mode = Field(
        Mode.AUTO,
        description="Auto follows ENABLE_PREFIX_DELEGATION on the DaemonSet; SecondaryIP or Prefix force one.",
    )
    manage: list[ManagedVariable] = Field(
        default_factory=_default_manage,
        min_length=1,
        max_length=4,
        description="The ipamd variables warmpool owns, each with its bounds. Others are never touched.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    churn: Churn = Field(default_factory=Churn)
    subnet_reserve: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="Share of each subnet's free IPs that warm pools must never take (0.2 = keep 20% free).",
    )
    rollout: Rollout = Field(default_factory=Rollout)
    dry_run: bool = Field(False, description="Recommend only: write status, never the DaemonSet.")
    paused: bool = Field(False, description="Stop planning and applying; status keeps the last values.")

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [{"rule": rule, "message": msg} for rule, msg in _SPEC_RULES]}
    )

    @field_validator("manage")
    @classmethod
    def _each_variable_once(cls, value: list[ManagedVariable]) -> list[ManagedVariable]:
        names = [m.name for m in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"each variable may be managed once; repeated: {', '.join(duplicates)}")
        return value

    @model_validator(mode="after")
    def _cross_field(self) -> WarmPoolPolicySpec:
        violations = _spec_rule_violations(self)
        if violations:
            raise ValueError("; ".join(violations))
        return self

    def bounds(self, variable: Variable) -> ManagedVariable | None:
        return next((m for m in self.manage if m.name == variable), None)

    @property
    def managed_variables(self) -> list[Variable]:
        return [m.name for m in self.manage]


# ----- status -----


class ConditionType(StrEnum):
    READY = "Ready"
    APPLIED = "Applied"
    DRY_RUN = "DryRun"
    CONFLICT = "Conflict"
    SUBNET_PRESSURE = "SubnetPressure"
    DEGRADED = "Degraded"
    FOREIGN_OWNER = "ForeignOwner"


class Condition(_Model):
    """A metav1.Condition."""

    type: str = Field(max_length=316)
    status: str = Field(json_schema_extra={"enum": ["True", "False", "Unknown"]})
    reason: str = Field(max_length=1024)
    message: str = Field("", max_length=32768)
    last_transition_time: datetime | None = None
    observed_generation: int | None = Field(None, ge=0)


class TargetValue(_Model):
    value: int = Field(ge=0)
    reason: str = Field("", max_length=1024)


class TargetValues(_Model):
    """One value per ipamd variable, each with the reason it has that value."""

    warm_eni_target: TargetValue | None = Field(None, alias="WARM_ENI_TARGET")
    warm_ip_target: TargetValue | None = Field(None, alias="WARM_IP_TARGET")
    minimum_ip_target: TargetValue | None = Field(None, alias="MINIMUM_IP_TARGET")
    warm_prefix_target: TargetValue | None = Field(None, alias="WARM_PREFIX_TARGET")

    def as_env(self) -> dict[Variable, int]:
        pairs = {
            Variable.WARM_ENI_TARGET: self.warm_eni_target,
            Variable.WARM_IP_TARGET: self.warm_ip_target,
            Variable.MINIMUM_IP_TARGET: self.minimum_ip_target,
            Variable.WARM_PREFIX_TARGET: self.warm_prefix_target,
        }
        return {k: v.value for k, v in pairs.items() if v is not None}


class BurstStatistics(_Model):
    window: Duration | None = None
    quantile: float | None = Field(None, ge=0, le=1)
    covered: float | None = Field(None, ge=0, description="Pod starts per node per window at the quantile.")
    max: int | None = Field(None, ge=0, description="Largest burst seen on one node in one window.")
    pods_per_node: float | None = Field(None, ge=0, description="Typical IP-consuming pods per node.")
    samples: float | None = Field(None, ge=0, description="Weight of history behind these figures.")


class SubnetHeadroom(_Model):
    id: str
    zone: str = ""
    free_ips: int = Field(ge=0)
    reserve_ips: int = Field(0, ge=0)
    warm_ips_planned: int = Field(0, ge=0)
    nodes: int = Field(0, ge=0)


class WarmPoolPolicyStatus(_Model):
    observed_generation: int | None = Field(None, ge=0)
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    mode: str | None = Field(None, description="The mode in effect: SecondaryIP or Prefix.")
    applied: TargetValues | None = None
    recommended: TargetValues | None = None
    applied_summary: str | None = Field(None, description="Applied values in one line, for kubectl get.")
    recommended_summary: str | None = Field(None, description="Recommended values in one line.")
    last_applied_time: datetime | None = None
    last_planned_time: datetime | None = None
    nodes: int | None = Field(None, ge=0, description="Nodes selected by the policy.")
    pods_observed: int | None = Field(None, ge=0, description="Pods holding a VPC IP on those nodes.")
    burst: BurstStatistics | None = None
    subnets: list[SubnetHeadroom] = Field(default_factory=list)
    checkpoint: dict[str, Any] | None = Field(
        None,
        description="The churn history, so a restart keeps what was learned. Written by the operator only.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class WarmPoolPolicy(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    api_version: str = Field(API_VERSION, alias="apiVersion")
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: WarmPoolPolicySpec = Field(default_factory=WarmPoolPolicySpec)
    status: WarmPoolPolicyStatus | None = None


def summarize(values: Mapping[Variable, int]) -> str:
    """'WARM_IP_TARGET=3,MINIMUM_IP_TARGET=20' in a stable order, for printer columns and logs."""
    order = list(Variable)
    return ",".join(f"{k.value}={values[k]}" for k in sorted(values, key=order.index))
