"""The WarmPoolPolicy API, version v1alpha1.

These pydantic models are the single source of truth: the CRD (`warmpool crd`, `crds/warmpoolpolicies.yaml`)
is generated from them, and the operator and the simulator parse every policy through them. Every rule beyond
the plain schema is a `Rule` (api/rules.py) that carries its CEL form, which the API server enforces on
admission (so a bad policy never lands), and its Python form, which the models check (so the operator never
acts on one that slipped in before the CRD was updated, and `warmpool simulate --policy` answers as the API
server would). One table of good and bad policies (tests/policy_cases.py) holds both to the same verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from warmpool.api import formats
from warmpool.api.formats import KubeFormat, parse_duration
from warmpool.api.rules import Rule, duration_rules, durations_compare, enforce, field_rules, kube_format

__all__ = ["parse_duration"]  # re-exported: callers read durations through the API module

GROUP = "warmpool.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "WarmPoolPolicy"
PLURAL = "warmpoolpolicies"
SINGULAR = "warmpoolpolicy"
SHORT_NAMES = ["wpp"]

# The largest value any of the four targets can usefully take: max pods of the biggest instance types (737 in
# secondary-IP mode, 250 recommended in prefix mode) rounded up. Above this a value can only be a typo.
MAX_TARGET_VALUE = 1000

# Sizes that bound both a request and the API server's CEL cost estimate (a rule over an unbounded list or
# string is refused or expensive); generous next to any real selector.
MAX_MATCH_LABELS = 64
MAX_MATCH_EXPRESSIONS = 32
MAX_SELECTOR_VALUES = 64
DURATION_MAX_LENGTH = 32
# rollout.maxPerDay: one rollout every 15 minutes at most; every rollout restarts aws-node on every node.
MAX_ROLLOUTS_PER_DAY = 96

# Status durations are written by the operator only, as Go writes them; a pattern is enough there.
StatusDuration = Annotated[str, Field(pattern=formats.DURATION_SYNTAX, max_length=DURATION_MAX_LENGTH)]


def _duration(name: str, low: str, high: str, example: str) -> tuple[Any, ...]:
    """Metadata of a spec duration: its syntax and range as rules with messages that say what to type (not a
    pattern, whose message would be the raw regular expression)."""
    return (Field(max_length=DURATION_MAX_LENGTH), *field_rules(*duration_rules(name, low, high, example)))


def _add_rules(schema: JsonDict, cls: type[Any]) -> None:
    rules: tuple[Rule, ...] = getattr(cls, "RULES", ())
    if rules:
        schema["x-kubernetes-validations"] = [r.as_cel() for r in rules]


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error, as the API server prunes them.
    `RULES` are whole-object rules: emitted as the schema's CEL rules and checked after the fields."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", json_schema_extra=_add_rules
    )
    RULES: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self) -> Any:
        enforce(type(self).RULES, self)
        return self


class Variable(StrEnum):
    """The ipamd environment variables warmpool can own."""

    WARM_ENI_TARGET = "WARM_ENI_TARGET"
    WARM_IP_TARGET = "WARM_IP_TARGET"
    MINIMUM_IP_TARGET = "MINIMUM_IP_TARGET"
    WARM_PREFIX_TARGET = "WARM_PREFIX_TARGET"


class ApplyVia(StrEnum):
    """How values reach aws-node: `DaemonSet` server-side applies the env entries; `EksAddon` sets them in the
    vpc-cni managed add-on's configurationValues (eks:UpdateAddon); `Auto` uses the add-on when it owns aws-node."""

    AUTO = "Auto"
    DAEMONSET = "DaemonSet"
    EKS_ADDON = "EksAddon"


class Mode(StrEnum):
    AUTO = "Auto"
    SECONDARY_IP = "SecondaryIP"
    PREFIX = "Prefix"


_LABEL_CHARS = "letters, digits, '-', '_' and '.', starting and ending with a letter or digit"

NamespaceName = Annotated[
    str,
    Field(max_length=formats.DNS1123_LABEL_MAX),
    *field_rules(
        kube_format(
            KubeFormat.DNS1123_LABEL,
            "targetRef.namespace must be a namespace name: at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit (e.g. kube-system)",
        )
    ),
]
DaemonSetName = Annotated[
    str,
    Field(max_length=formats.DNS1123_SUBDOMAIN_MAX),
    *field_rules(
        kube_format(
            KubeFormat.DNS1123_SUBDOMAIN,
            "targetRef.name must be a DaemonSet name: at most 253 lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit (e.g. aws-node)",
        )
    ),
]
ContainerName = Annotated[
    str,
    Field(max_length=formats.DNS1123_LABEL_MAX),
    *field_rules(
        kube_format(
            KubeFormat.DNS1123_LABEL,
            "targetRef.container must be a container name: at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit (e.g. aws-node)",
        )
    ),
]
_LABEL_KEY_MESSAGE = (
    f"label keys must be a name of at most 63 {_LABEL_CHARS}, optionally after a DNS subdomain prefix of at "
    "most 253 characters and '/' (e.g. app or eks.amazonaws.com/nodegroup)"
)
LabelKey = Annotated[
    str,
    Field(max_length=formats.QUALIFIED_NAME_MAX),
    *field_rules(kube_format(KubeFormat.QUALIFIED_NAME, _LABEL_KEY_MESSAGE)),
]
LabelValue = Annotated[
    str,
    Field(max_length=formats.LABEL_VALUE_MAX),
    *field_rules(
        kube_format(
            KubeFormat.LABEL_VALUE,
            f"label values must be empty or at most 63 {_LABEL_CHARS} (e.g. spot or web-1)",
        )
    ),
]


BurstWindow = Annotated[str, *_duration("burstWindow", "1s", "1h", "30s")]
HalfLife = Annotated[str, *_duration("halfLife", "1s", "720h", "24h")]
Cooldown = Annotated[str, *_duration("cooldown", "10s", "720h", "6h")]
QuietPeriod = Annotated[str, *_duration("quietPeriod", "0s", "24h", "10m")]
Interval = Annotated[str, *_duration("interval", "10s", "24h", "60s")]


class TargetRef(_Model):
    """The DaemonSet and container whose env ipamd reads."""

    namespace: NamespaceName = Field("kube-system", description="Namespace of the DaemonSet.")
    name: DaemonSetName = Field("aws-node", description="Name of the DaemonSet.")
    container: ContainerName = Field("aws-node", description="Container running ipamd.")


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(_Model):
    """One requirement of a label selector, paired with its values as Kubernetes pairs them."""

    key: LabelKey = Field(description="The label key the requirement applies to.")
    operator: SelectorOperator = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: list[LabelValue] = Field(
        default_factory=list,
        max_length=MAX_SELECTOR_VALUES,
        description="Label values: at least one for In and NotIn, none for Exists and DoesNotExist.",
    )

    RULES = (
        Rule(
            "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
            lambda r: r.operator not in (SelectorOperator.IN, SelectorOperator.NOT_IN) or len(r.values) > 0,
            "values must list at least one label value when operator is In or NotIn (e.g. values: [spot])",
            ".values",
            "FieldValueRequired",
        ),
        Rule(
            "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",
            lambda r: (
                r.operator not in (SelectorOperator.EXISTS, SelectorOperator.DOES_NOT_EXIST) or len(r.values) == 0
            ),
            "values must be empty when operator is Exists or DoesNotExist (remove values, or use In)",
            ".values",
            "FieldValueForbidden",
        ),
    )


class LabelSelector(_Model):
    """A Kubernetes label selector; empty selects every node."""

    match_labels: dict[str, LabelValue] = Field(
        default_factory=dict,
        max_length=MAX_MATCH_LABELS,
        description="Labels a node must have, key to value.",
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=MAX_MATCH_EXPRESSIONS, description="Requirements a node must meet."
    )

    # Map keys cannot carry their own schema in a CRD, so the key format is a rule on the map; the size test
    # first keeps a huge key from reaching the format check.
    RULES = (
        Rule(
            f"self.matchLabels.all(k, size(k) <= {formats.QUALIFIED_NAME_MAX} && "
            "!format.qualifiedName().validate(k).hasValue())",
            lambda s: all(formats.is_qualified_name(k) for k in s.match_labels),
            "matchLabels: " + _LABEL_KEY_MESSAGE,
            ".matchLabels",
        ),
    )


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

    RULES = (
        Rule(
            "!has(self.max) || self.min <= self.max",
            lambda m: m.max is None or m.min <= m.max,
            "min must not be greater than max: lower min or raise max (e.g. min: 2, max: 10)",
        ),
    )


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
    burst_window: BurstWindow = Field(
        "30s",
        description="Time a spare IP must cover: how long ipamd takes to refill the pool (EC2 call, new ENI); "
        "1s to 1h.",
    )
    half_life: HalfLife = Field(
        "24h", description="Half-life of the burst history: older behaviour fades with this period; 1s to 720h."
    )
    headroom_ips: int = Field(
        1, ge=0, le=100, alias="headroomIPs", description="Spare IPs added on top of the covered burst."
    )
    headroom_ratio: float = Field(
        0.0, ge=0, le=1, description="Share of the covered burst added on top of it (0.2 = 20% more)."
    )
    # 3.6 = EC2's refill of 5 mutating calls a second per account and region, spread over 5,000 nodes.
    ec2_calls_per_node_hour: float = Field(
        3.6,
        gt=0,
        le=3600,
        alias="ec2CallsPerNodeHour",
        description="EC2 calls (IP and ENI allocations and releases) a node's pool may make an hour on the "
        "replayed history: EC2 refills about 5 mutating calls a second per account and region, so 3.6 lets "
        "5,000 nodes churn without throttling each other. Above 0, at most 3600.",
    )

    RULES = (
        durations_compare(
            {"burstWindow": "burst_window", "halfLife": "half_life"},
            "duration(self.halfLife) > duration(self.burstWindow)",
            lambda window, half_life: half_life > window,
            "halfLife must be longer than burstWindow (e.g. burstWindow: 30s, halfLife: 24h)",
            ".halfLife",
        ),
    )


class Rollout(_Model):
    """Guards on changing the DaemonSet: every change restarts aws-node on every node."""

    cooldown: Cooldown = Field("6h", description="Minimum time between two changes of the DaemonSet env; 10s to 720h.")
    dead_band: int = Field(
        2, ge=0, le=100, description="Smallest change of a value (in IPs or prefixes) worth a rollout."
    )
    dead_band_ratio: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Smallest relative change worth a rollout (0.2 = 20% of the current value).",
    )
    quiet_period: QuietPeriod = Field(
        "10m", description="Churn must have stayed low this long before a change is applied; 0s to 24h."
    )
    interval: Interval = Field("60s", description="How often the policy is re-planned; 10s to 24h.")
    max_per_day: int = Field(
        4,
        ge=1,
        le=MAX_ROLLOUTS_PER_DAY,
        description="Most aws-node rollouts in any 24 hours, not counting warmpool's first change; a rescue "
        f"(pods waiting for IPs) or a subnet-pressure relief may pass it. 1 to {MAX_ROLLOUTS_PER_DAY}.",
    )
    allow_foreign_owner: bool = Field(
        False,
        description=(
            "Take over env entries owned by another field manager (the EKS add-on, a GitOps tool). "
            "Off by default: the other owner would revert or fight the change."
        ),
    )
    apply_via: ApplyVia = Field(
        ApplyVia.AUTO,
        description="DaemonSet (server-side apply), EksAddon (eks:UpdateAddon configurationValues), or Auto "
        "(the add-on when it owns aws-node's env).",
    )

    RULES = (
        durations_compare(
            {"interval": "interval", "cooldown": "cooldown"},
            "duration(self.cooldown) >= duration(self.interval)",
            lambda interval, cooldown: cooldown >= interval,
            "cooldown must not be shorter than interval (e.g. interval: 60s, cooldown: 6h)",
            ".cooldown",
        ),
    )


def _manages(var: Variable) -> str:
    return f"self.manage.exists(m, m.name == '{var.value}')"


def _managed(spec: WarmPoolPolicySpec) -> set[Variable]:
    return {m.name for m in spec.manage}


def _minimum_can_exceed_warm_ip(spec: WarmPoolPolicySpec) -> bool:
    """WARM_IP_TARGET pinned to 0 by its max while MINIMUM_IP_TARGET may go above 0: the freeze again."""
    warm, minimum = spec.bounds(Variable.WARM_IP_TARGET), spec.bounds(Variable.MINIMUM_IP_TARGET)
    return warm is not None and warm.max == 0 and minimum is not None and minimum.max != 0


_ENI, _IP, _MIN, _PREFIX = (
    Variable.WARM_ENI_TARGET,
    Variable.WARM_IP_TARGET,
    Variable.MINIMUM_IP_TARGET,
    Variable.WARM_PREFIX_TARGET,
)

# Cross-field rules on the spec: each as CEL for the API server and as Python for the operator.
SPEC_RULES: tuple[Rule, ...] = (
    Rule(
        f"!({_manages(_ENI)} && {_manages(_IP)})",
        lambda s: not {_ENI, _IP} <= _managed(s),
        "WARM_ENI_TARGET and WARM_IP_TARGET cannot both be managed: ipamd ignores WARM_ENI_TARGET "
        "when WARM_IP_TARGET is set; manage one of them",
        ".manage",
    ),
    Rule(
        f"!({_manages(_PREFIX)} && {_manages(_IP)})",
        lambda s: not {_PREFIX, _IP} <= _managed(s),
        "WARM_PREFIX_TARGET and WARM_IP_TARGET cannot both be managed: ipamd ignores WARM_PREFIX_TARGET "
        "when WARM_IP_TARGET is set; manage one of them",
        ".manage",
    ),
    Rule(
        f"!(self.mode == 'Prefix' && {_manages(_ENI)})",
        lambda s: not (s.mode == Mode.PREFIX and _ENI in _managed(s)),
        "WARM_ENI_TARGET is not used in Prefix mode; manage WARM_PREFIX_TARGET or WARM_IP_TARGET instead",
        ".manage",
    ),
    Rule(
        f"!(self.mode == 'SecondaryIP' && {_manages(_PREFIX)})",
        lambda s: not (s.mode == Mode.SECONDARY_IP and _PREFIX in _managed(s)),
        "WARM_PREFIX_TARGET is only used in Prefix mode; set mode: Prefix or Auto, or manage WARM_ENI_TARGET "
        "or WARM_IP_TARGET instead",
        ".manage",
    ),
    Rule(
        f"!{_manages(_MIN)} || {_manages(_IP)}",
        lambda s: _MIN not in _managed(s) or _IP in _managed(s),
        "MINIMUM_IP_TARGET needs WARM_IP_TARGET managed too: alone it freezes nodes at the minimum and every "
        "further pod waits for an EC2 call; add {name: WARM_IP_TARGET} to manage",
        ".manage",
    ),
    Rule(
        "!self.manage.exists(w, w.name == 'WARM_IP_TARGET' && has(w.max) && w.max == 0) || "
        "!self.manage.exists(m, m.name == 'MINIMUM_IP_TARGET' && (!has(m.max) || m.max > 0))",
        lambda s: not _minimum_can_exceed_warm_ip(s),
        "WARM_IP_TARGET max: 0 with a MINIMUM_IP_TARGET that may be above 0 freezes nodes at the minimum "
        "(every further pod waits for an EC2 call): give WARM_IP_TARGET a max of at least 1, or MINIMUM_IP_TARGET "
        "max: 0",
        ".manage",
    ),
)


class WarmPoolPolicySpec(_Model):
    """What a platform team asks of warmpool for one aws-node DaemonSet."""

    target_ref: TargetRef = Field(default_factory=TargetRef)
    node_selector: LabelSelector = Field(
        default_factory=LabelSelector, description="Nodes whose churn counts; empty selects all nodes."
    )
    mode: Mode = Field(
        Mode.AUTO,
        description="The mode you expect ipamd to run. warmpool always plans for the mode ipamd runs "
        "(ENABLE_PREFIX_DELEGATION as Go parses it); SecondaryIP or Prefix that disagrees is reported as "
        "Degraded/ModeMismatch. Auto: no expectation.",
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

    RULES = SPEC_RULES

    @field_validator("manage")
    @classmethod
    def _each_variable_once(cls, value: list[ManagedVariable]) -> list[ManagedVariable]:
        # A field error also keeps the cross-field rules from running on a list they would misread.
        names = [m.name for m in value]
        repeated = sorted({n.value for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"each variable may be listed once in manage; repeated: {', '.join(repeated)}")
        return value

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
    MEASURED = "Measured"


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
    window: StatusDuration | None = None
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


class AddonUpdate(_Model):
    """The last eks:UpdateAddon warmpool started, when values go through the EKS managed add-on."""

    id: str = Field(max_length=128)
    status: str = Field(max_length=32, description="InProgress, Successful, Failed or Cancelled, as EKS says.")
    values: str | None = Field(None, max_length=1024, description="The managed values it sets.")
    message: str | None = Field(None, max_length=2048)
    started_time: datetime | None = None


class MeasuredInstanceType(_Model):
    """ipamd's own figures for the sampled nodes of one instance type, beside the operator's estimate."""

    instance_type: str = Field(max_length=128)
    nodes: int = Field(0, ge=0, description="Selected nodes of this type.")
    nodes_sampled: int = Field(0, ge=0, description="Of them, the ones chosen to be scraped.")
    nodes_measured: int = Field(0, ge=0, description="Of those, the ones whose figures are shown.")
    idle_ips_per_node: float | None = Field(None, ge=0, description="ipamd's total - assigned IPs, mean.")
    estimated_idle_ips_per_node: float | None = Field(
        None, ge=0, description="The operator's estimate for the same nodes (ipamd's steady state, env in force)."
    )
    assigned_ips_per_node: float | None = Field(None, ge=0)
    total_ips_per_node: float | None = Field(None, ge=0)
    enis_per_node: float | None = Field(None, ge=0)
    no_ip_errors: int | None = Field(
        None, ge=0, description="Pod IP assignments that failed for want of a free IP, within noIpErrorsWindow."
    )
    no_ip_errors_since_start: int | None = Field(None, ge=0, description="ipamd's counters as read, summed.")
    scraped_time: datetime | None = None


class MeasuredPool(_Model):
    """The pool as ipamd reports it on a sample of nodes (port 61678), read apart from planning."""

    state: str = Field(
        json_schema_extra={"enum": ["Fresh", "Partial", "Stale", "Missing", "Off"]},
        description="Fresh: every sampled node read lately; Partial: some; Stale: none lately (last figures "
        "shown); Missing: nothing read; Off: scraping switched off.",
    )
    message: str = Field("", max_length=2048)
    via: str | None = Field(None, max_length=16, description="proxy (API server pod proxy) or direct.")
    scraped_time: datetime | None = Field(None, description="The oldest scrape the figures use.")
    nodes_sampled: int | None = Field(None, ge=0)
    nodes_measured: int | None = Field(None, ge=0)
    idle_ips_per_node: float | None = Field(None, ge=0, description="Measured, over every type.")
    estimated_idle_ips_per_node: float | None = Field(None, ge=0, description="Estimated, same nodes.")
    no_ip_errors: int | None = Field(None, ge=0, description="Within noIpErrorsWindow, summed over the nodes.")
    no_ip_errors_window: StatusDuration | None = Field(None, description="How far back noIpErrors counts.")
    by_instance_type: list[MeasuredInstanceType] = Field(default_factory=list)


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
    addon_update: AddonUpdate | None = None
    measured: MeasuredPool | None = None
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
