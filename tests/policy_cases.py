"""Good and bad WarmPoolPolicy specs, shared by the model unit tests and the API-server integration tests, so
the pydantic validators and the CRD's schema + CEL rules are held to the same table.

Each bad case names the message a person must see. Where both enforcers run the same `Rule`, that message is
the rule's own text and both must show it; where the plain schema decides (lengths, enums, numeric ranges),
the API server and pydantic word it differently and the case names each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SUBDOMAIN_253 = ".".join(["a" * 63] * 3 + ["b" * 61])
LABEL_KEY_MAX = f"{SUBDOMAIN_253}/{'N' * 63}"
MIB = 1 << 20


def _selector_expr(key: str = "a", operator: str = "In", values: list[str] | None = None) -> dict[str, Any]:
    expr: dict[str, Any] = {"key": key, "operator": operator}
    if values is not None:
        expr["values"] = values
    return {"nodeSelector": {"matchExpressions": [expr]}}


GOOD_SPECS: dict[str, dict[str, Any]] = {
    "empty (all defaults)": {},
    "prefix mode with prefix target": {
        "mode": "Prefix",
        "manage": [{"name": "WARM_PREFIX_TARGET", "min": 1}],
    },
    "whole ENIs": {"mode": "SecondaryIP", "manage": [{"name": "WARM_ENI_TARGET", "min": 1, "max": 2}]},
    "IP targets with bounds": {
        "manage": [{"name": "WARM_IP_TARGET", "min": 2, "max": 10}, {"name": "MINIMUM_IP_TARGET", "max": 30}]
    },
    "both IP targets pinned to 0": {
        "manage": [{"name": "WARM_IP_TARGET", "max": 0}, {"name": "MINIMUM_IP_TARGET", "max": 0}]
    },
    "WARM_IP_TARGET max 1 under a minimum of 10": {
        "manage": [{"name": "WARM_IP_TARGET", "max": 1}, {"name": "MINIMUM_IP_TARGET", "min": 10}]
    },
    "WARM_IP_TARGET max 0 alone": {"manage": [{"name": "WARM_IP_TARGET", "max": 0}]},
    "everything set": {
        "targetRef": {"namespace": "kube-system", "name": "aws-node", "container": "aws-node"},
        "nodeSelector": {
            "matchLabels": {"eks.amazonaws.com/nodegroup": "web"},
            "matchExpressions": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}],
        },
        "churn": {
            "burstQuantile": 1,
            "burstWindow": "45s",
            "halfLife": "12h",
            "headroomIPs": 0,
            "headroomRatio": 0.25,
            "ec2CallsPerNodeHour": 12.5,
        },
        "subnetReserve": 0,
        "rollout": {
            "cooldown": "1h30m",
            "deadBand": 0,
            "deadBandRatio": 0,
            "quietPeriod": "0s",
            "interval": "30s",
            "maxPerDay": 96,
            "allowForeignOwner": True,
        },
        "dryRun": True,
        "paused": False,
    },
    "longest names": {"targetRef": {"namespace": "n" * 63, "name": SUBDOMAIN_253, "container": "c" * 63}},
    "names of digits and dashes": {"targetRef": {"namespace": "123-abc", "name": "a.b-c.1", "container": "0"}},
    "longest label key and value": {"nodeSelector": {"matchLabels": {LABEL_KEY_MAX: "V" * 63}}},
    "label keys and values of every allowed character": {
        "nodeSelector": {"matchLabels": {"A.b_c-9": "Z.y_x-0", "example.com/x": "", "x.y/Z": "q"}}
    },
    "Exists and DoesNotExist without values": {
        "nodeSelector": {
            "matchExpressions": [
                {"key": "spot", "operator": "Exists"},
                {"key": "example.com/gpu", "operator": "DoesNotExist", "values": []},
            ]
        }
    },
    # The largest selector the schema admits, every string at its longest: the API server's CEL cost of
    # checking it must stay within the per-request budget.
    "largest selector": {
        "nodeSelector": {
            "matchLabels": {f"{SUBDOMAIN_253}/{i:02d}{'n' * 61}": "V" * 63 for i in range(64)},
            "matchExpressions": [
                {
                    "key": f"{SUBDOMAIN_253}/{i:02d}{'k' * 61}",
                    "operator": "NotIn",
                    "values": [f"{j:02d}{'v' * 61}" for j in range(64)],
                }
                for i in range(32)
            ],
        }
    },
    "shortest durations": {
        "churn": {"burstWindow": "1s", "halfLife": "1001ms"},
        "rollout": {"interval": "10s", "cooldown": "10s", "quietPeriod": "0s"},
    },
    "longest durations": {
        "churn": {"burstWindow": "1h", "halfLife": "720h"},
        "rollout": {"interval": "24h", "cooldown": "720h", "quietPeriod": "24h"},
    },
    "durations with fractions and every unit": {
        "churn": {"burstWindow": "1500ms", "halfLife": "1.5h"},
        "rollout": {"interval": "1m0.5s", "cooldown": "1h0m0s1ms", "quietPeriod": "0.25h"},
    },
}


@dataclass(frozen=True)
class Bad:
    """A rejected spec: `message` is what a person reads; `path` is where the API server reports it;
    `python_message` replaces `message` for pydantic where the plain schema, not a shared rule, decides."""

    spec: dict[str, Any]
    message: str
    path: str = "spec"
    python_message: str | None = None

    @property
    def api_message(self) -> str:
        return self.message

    @property
    def model_message(self) -> str:
        return self.python_message or self.message


NAMESPACE = (
    "targetRef.namespace must be a namespace name: at most 63 lowercase letters, digits and '-', "
    "starting and ending with a letter or digit (e.g. kube-system)"
)
DAEMONSET = (
    "targetRef.name must be a DaemonSet name: at most 253 lowercase letters, digits, '-' and '.', "
    "starting and ending with a letter or digit (e.g. aws-node)"
)
CONTAINER = (
    "targetRef.container must be a container name: at most 63 lowercase letters, digits and '-', "
    "starting and ending with a letter or digit (e.g. aws-node)"
)
LABEL_KEY = (
    "label keys must be a name of at most 63 letters, digits, '-', '_' and '.', starting and ending with a "
    "letter or digit, optionally after a DNS subdomain prefix of at most 253 characters and '/' "
    "(e.g. app or eks.amazonaws.com/nodegroup)"
)
LABEL_VALUE = (
    "label values must be empty or at most 63 letters, digits, '-', '_' and '.', starting and ending with a "
    "letter or digit (e.g. spot or web-1)"
)
IN_NEEDS_VALUES = "values must list at least one label value when operator is In or NotIn (e.g. values: [spot])"
EXISTS_NO_VALUES = "values must be empty when operator is Exists or DoesNotExist (remove values, or use In)"
FREEZE_BY_MAX = (
    "WARM_IP_TARGET max: 0 with a MINIMUM_IP_TARGET that may be above 0 freezes nodes at the minimum "
    "(every further pod waits for an EC2 call): give WARM_IP_TARGET a max of at least 1, or MINIMUM_IP_TARGET "
    "max: 0"
)
TOO_LONG_63 = "Too long: may not be more than 63 bytes"


def _written(name: str, example: str) -> str:
    return (
        f"{name} must be a duration such as {example} or 1h30m: numbers each followed by a unit (h, m, s or ms), "
        "largest unit first"
    )


EXPR0 = "spec.nodeSelector.matchExpressions[0]"

BAD_SPECS: dict[str, Bad] = {
    # ----- targetRef: Kubernetes names -----
    "namespace with capitals": Bad({"targetRef": {"namespace": "Kube-System"}}, NAMESPACE, "spec.targetRef.namespace"),
    "empty namespace": Bad({"targetRef": {"namespace": ""}}, NAMESPACE, "spec.targetRef.namespace"),
    "namespace with a dot": Bad({"targetRef": {"namespace": "kube.system"}}, NAMESPACE, "spec.targetRef.namespace"),
    "namespace of 64 characters": Bad(
        {"targetRef": {"namespace": "n" * 64}},
        TOO_LONG_63,
        "spec.targetRef.namespace",
        "String should have at most 63 characters",
    ),
    "DaemonSet name with a space": Bad({"targetRef": {"name": "AWS NODE"}}, DAEMONSET, "spec.targetRef.name"),
    "DaemonSet name as a path": Bad({"targetRef": {"name": "../../secrets/x"}}, DAEMONSET, "spec.targetRef.name"),
    "DaemonSet name ending in a dash": Bad({"targetRef": {"name": "aws-node-"}}, DAEMONSET, "spec.targetRef.name"),
    "DaemonSet name of 254 characters": Bad(
        {"targetRef": {"name": SUBDOMAIN_253 + "b"}},
        "Too long: may not be more than 253 bytes",
        "spec.targetRef.name",
        "String should have at most 253 characters",
    ),
    "container with an underscore": Bad(
        {"targetRef": {"container": "aws_node"}}, CONTAINER, "spec.targetRef.container"
    ),
    "container with a dot": Bad({"targetRef": {"container": "aws.node"}}, CONTAINER, "spec.targetRef.container"),
    # ----- label selectors, as Kubernetes validates them -----
    "In without values": Bad(_selector_expr("a", "In"), IN_NEEDS_VALUES, f"{EXPR0}.values"),
    "NotIn with empty values": Bad(_selector_expr("a", "NotIn", []), IN_NEEDS_VALUES, f"{EXPR0}.values"),
    "Exists with values": Bad(_selector_expr("a", "Exists", ["x"]), EXISTS_NO_VALUES, f"{EXPR0}.values"),
    "DoesNotExist with values": Bad(_selector_expr("a", "DoesNotExist", ["x"]), EXISTS_NO_VALUES, f"{EXPR0}.values"),
    "unknown operator": Bad(
        _selector_expr("a", "Like", ["x"]),
        'Unsupported value: "Like": supported values: "In", "NotIn", "Exists", "DoesNotExist"',
        f"{EXPR0}.operator",
        "Input should be 'In', 'NotIn', 'Exists' or 'DoesNotExist'",
    ),
    "expression key with a space": Bad(_selector_expr("bad key", "Exists"), LABEL_KEY, f"{EXPR0}.key"),
    "expression key with two slashes": Bad(_selector_expr("a/b/c", "Exists"), LABEL_KEY, f"{EXPR0}.key"),
    "expression key with an empty prefix": Bad(_selector_expr("/name", "Exists"), LABEL_KEY, f"{EXPR0}.key"),
    "expression key with a capital prefix": Bad(
        _selector_expr("Example.com/name", "Exists"), LABEL_KEY, f"{EXPR0}.key"
    ),
    "expression key with a name of 64": Bad(_selector_expr("n" * 64, "Exists"), LABEL_KEY, f"{EXPR0}.key"),
    "expression key with a prefix of 254": Bad(
        _selector_expr(f"{SUBDOMAIN_253}b/name", "Exists"), LABEL_KEY, f"{EXPR0}.key"
    ),
    "empty expression key": Bad(_selector_expr("", "Exists"), LABEL_KEY, f"{EXPR0}.key"),
    "expression value starting with a dash": Bad(
        _selector_expr("a", "In", ["ok", "-bad"]), LABEL_VALUE, f"{EXPR0}.values[1]"
    ),
    "expression value of 64": Bad(
        _selector_expr("a", "In", ["v" * 64]),
        TOO_LONG_63,
        f"{EXPR0}.values[0]",
        "String should have at most 63 characters",
    ),
    "65 expression values": Bad(
        _selector_expr("a", "In", [f"v{i}" for i in range(65)]),
        "Too many: 65: must have at most 64 items",
        f"{EXPR0}.values",
        "List should have at most 64 items",
    ),
    "33 expressions": Bad(
        {"nodeSelector": {"matchExpressions": [{"key": f"k{i}", "operator": "Exists"} for i in range(33)]}},
        "Too many: 33: must have at most 32 items",
        "spec.nodeSelector.matchExpressions",
        "List should have at most 32 items",
    ),
    "label key with a space": Bad(
        {"nodeSelector": {"matchLabels": {"bad key": "x"}}},
        "matchLabels: " + LABEL_KEY,
        "spec.nodeSelector.matchLabels",
    ),
    "label key of 1 MiB": Bad(
        {"nodeSelector": {"matchLabels": {"k" * MIB: "x"}}},
        "matchLabels: " + LABEL_KEY,
        "spec.nodeSelector.matchLabels",
    ),
    "label value with a slash": Bad(
        {"nodeSelector": {"matchLabels": {"a": "x/y"}}}, LABEL_VALUE, "spec.nodeSelector.matchLabels[a]"
    ),
    "label value of 64": Bad(
        {"nodeSelector": {"matchLabels": {"a": "v" * 64}}},
        TOO_LONG_63,
        "spec.nodeSelector.matchLabels.a",
        "String should have at most 63 characters",
    ),
    "label value of 1 MiB": Bad(
        {"nodeSelector": {"matchLabels": {"a": "v" * MIB}}},
        TOO_LONG_63,
        "spec.nodeSelector.matchLabels.a",
        "String should have at most 63 characters",
    ),
    "65 labels": Bad(
        {"nodeSelector": {"matchLabels": {f"k{i}": "v" for i in range(65)}}},
        "Too many: 65: must have at most 64 items",
        "spec.nodeSelector.matchLabels",
        "Dictionary should have at most 64 items",
    ),
    # ----- managed variables and their bounds -----
    "min above max": Bad(
        {"manage": [{"name": "WARM_IP_TARGET", "min": 5, "max": 2}]},
        "min must not be greater than max: lower min or raise max (e.g. min: 2, max: 10)",
        "spec.manage[0]",
    ),
    "unknown variable": Bad(
        {"manage": [{"name": "WARM_FOO_TARGET"}]},
        'Unsupported value: "WARM_FOO_TARGET"',
        "spec.manage[0].name",
        "Input should be 'WARM_ENI_TARGET', 'WARM_IP_TARGET', 'MINIMUM_IP_TARGET' or 'WARM_PREFIX_TARGET'",
    ),
    "variable managed twice": Bad(
        {"manage": [{"name": "WARM_IP_TARGET"}, {"name": "WARM_IP_TARGET"}]},
        'Duplicate value: {"name":"WARM_IP_TARGET"}',
        "spec.manage[1]",
        "each variable may be listed once in manage; repeated: WARM_IP_TARGET",
    ),
    "ENI and IP targets together": Bad(
        {"manage": [{"name": "WARM_ENI_TARGET"}, {"name": "WARM_IP_TARGET"}]},
        "WARM_ENI_TARGET and WARM_IP_TARGET cannot both be managed: ipamd ignores WARM_ENI_TARGET when "
        "WARM_IP_TARGET is set; manage one of them",
        "spec.manage",
    ),
    "prefix and IP targets together": Bad(
        {"mode": "Prefix", "manage": [{"name": "WARM_PREFIX_TARGET"}, {"name": "WARM_IP_TARGET"}]},
        "WARM_PREFIX_TARGET and WARM_IP_TARGET cannot both be managed: ipamd ignores WARM_PREFIX_TARGET when "
        "WARM_IP_TARGET is set; manage one of them",
        "spec.manage",
    ),
    "ENI target in prefix mode": Bad(
        {"mode": "Prefix", "manage": [{"name": "WARM_ENI_TARGET"}]},
        "WARM_ENI_TARGET is not used in Prefix mode; manage WARM_PREFIX_TARGET or WARM_IP_TARGET instead",
        "spec.manage",
    ),
    "prefix target in secondary mode": Bad(
        {"mode": "SecondaryIP", "manage": [{"name": "WARM_PREFIX_TARGET"}]},
        "WARM_PREFIX_TARGET is only used in Prefix mode; set mode: Prefix or Auto, or manage WARM_ENI_TARGET or "
        "WARM_IP_TARGET instead",
        "spec.manage",
    ),
    "minimum IP alone": Bad(
        {"manage": [{"name": "MINIMUM_IP_TARGET"}]},
        "MINIMUM_IP_TARGET needs WARM_IP_TARGET managed too: alone it freezes nodes at the minimum and every "
        "further pod waits for an EC2 call; add {name: WARM_IP_TARGET} to manage",
        "spec.manage",
    ),
    "minimum IP with the ENI target only": Bad(
        {"mode": "SecondaryIP", "manage": [{"name": "WARM_ENI_TARGET"}, {"name": "MINIMUM_IP_TARGET", "min": 5}]},
        "MINIMUM_IP_TARGET needs WARM_IP_TARGET managed too",
        "spec.manage",
    ),
    "WARM_IP_TARGET max 0 under a minimum of 10": Bad(
        {"manage": [{"name": "WARM_IP_TARGET", "max": 0}, {"name": "MINIMUM_IP_TARGET", "min": 10}]},
        FREEZE_BY_MAX,
        "spec.manage",
    ),
    "WARM_IP_TARGET max 0 under an unbounded minimum": Bad(
        {"manage": [{"name": "MINIMUM_IP_TARGET"}, {"name": "WARM_IP_TARGET", "min": 0, "max": 0}]},
        FREEZE_BY_MAX,
        "spec.manage",
    ),
    "WARM_IP_TARGET max 0 under a minimum of at most 5": Bad(
        {"manage": [{"name": "WARM_IP_TARGET", "max": 0}, {"name": "MINIMUM_IP_TARGET", "max": 5}]},
        FREEZE_BY_MAX,
        "spec.manage",
    ),
    "negative bound": Bad(
        {"manage": [{"name": "WARM_IP_TARGET", "min": -1}]},
        "should be greater than or equal to 0",
        "spec.manage[0].min",
        "Input should be greater than or equal to 0",
    ),
    "absurd bound": Bad(
        {"manage": [{"name": "WARM_IP_TARGET", "max": 100000}]},
        "should be less than or equal to 1000",
        "spec.manage[0].max",
        "Input should be less than or equal to 1000",
    ),
    "nothing managed": Bad(
        {"manage": []},
        "should have at least 1 items",
        "spec.manage",
        "List should have at least 1 item",
    ),
    # ----- numbers -----
    "quantile zero": Bad(
        {"churn": {"burstQuantile": 0}},
        "should be greater than 0",
        "spec.churn.burstQuantile",
        "Input should be greater than 0",
    ),
    "quantile above one": Bad(
        {"churn": {"burstQuantile": 1.5}},
        "should be less than or equal to 1",
        "spec.churn.burstQuantile",
        "Input should be less than or equal to 1",
    ),
    "EC2 call budget zero": Bad(
        {"churn": {"ec2CallsPerNodeHour": 0}},
        "should be greater than 0",
        "spec.churn.ec2CallsPerNodeHour",
        "Input should be greater than 0",
    ),
    "no rollout a day": Bad(
        {"rollout": {"maxPerDay": 0}},
        "should be greater than or equal to 1",
        "spec.rollout.maxPerDay",
        "Input should be greater than or equal to 1",
    ),
    "a rollout every 10 minutes": Bad(
        {"rollout": {"maxPerDay": 144}},
        "should be less than or equal to 96",
        "spec.rollout.maxPerDay",
        "Input should be less than or equal to 96",
    ),
    "reserve of 100%": Bad(
        {"subnetReserve": 1},
        "should be less than 1",
        "spec.subnetReserve",
        "Input should be less than 1",
    ),
    "unknown mode": Bad(
        {"mode": "Turbo"},
        'Unsupported value: "Turbo": supported values: "Auto", "SecondaryIP", "Prefix"',
        "spec.mode",
        "Input should be 'Auto', 'SecondaryIP' or 'Prefix'",
    ),
    # ----- durations -----
    "duration in words": Bad(
        {"churn": {"burstWindow": "ten seconds"}}, _written("burstWindow", "30s"), "spec.churn.burstWindow"
    ),
    "duration in days": Bad({"rollout": {"cooldown": "1d"}}, _written("cooldown", "6h"), "spec.rollout.cooldown"),
    "duration without a unit": Bad(
        {"rollout": {"interval": "60"}}, _written("interval", "60s"), "spec.rollout.interval"
    ),
    "negative duration": Bad(
        {"rollout": {"quietPeriod": "-5m"}}, _written("quietPeriod", "10m"), "spec.rollout.quietPeriod"
    ),
    "duration with a space": Bad({"churn": {"halfLife": "5 h"}}, _written("halfLife", "24h"), "spec.churn.halfLife"),
    "duration smallest unit first": Bad(
        {"churn": {"halfLife": "30m1h"}}, _written("halfLife", "24h"), "spec.churn.halfLife"
    ),
    "empty duration": Bad({"rollout": {"cooldown": ""}}, _written("cooldown", "6h"), "spec.rollout.cooldown"),
    "duration in microseconds": Bad(
        {"churn": {"burstWindow": "1000000us"}}, _written("burstWindow", "30s"), "spec.churn.burstWindow"
    ),
    "duration beyond Go's range": Bad(
        {"rollout": {"cooldown": "99999999999h"}},
        "cooldown must be between 10s and 720h, e.g. 6h",
        "spec.rollout.cooldown",
    ),
    "duration just beyond Go's range": Bad(
        {"churn": {"halfLife": "2562048h"}}, "halfLife must be between 1s and 720h, e.g. 24h", "spec.churn.halfLife"
    ),
    "duration too long to be a duration": Bad(
        {"rollout": {"interval": "1" * 40 + "s"}},
        "Too long: may not be more than 32 bytes",
        "spec.rollout.interval",
        "String should have at most 32 characters",
    ),
    "burst window of two hours": Bad(
        {"churn": {"burstWindow": "2h"}}, "burstWindow must be between 1s and 1h, e.g. 30s", "spec.churn.burstWindow"
    ),
    "burst window under a second": Bad(
        {"churn": {"burstWindow": "999ms"}},
        "burstWindow must be between 1s and 1h, e.g. 30s",
        "spec.churn.burstWindow",
    ),
    "half-life under a second": Bad(
        {"churn": {"burstWindow": "1s", "halfLife": "999ms"}},
        "halfLife must be between 1s and 720h, e.g. 24h",
        "spec.churn.halfLife",
    ),
    "half-life of 31 days": Bad(
        {"churn": {"halfLife": "744h"}}, "halfLife must be between 1s and 720h, e.g. 24h", "spec.churn.halfLife"
    ),
    "half-life shorter than window": Bad(
        {"churn": {"burstWindow": "5m", "halfLife": "1m"}},
        "halfLife must be longer than burstWindow (e.g. burstWindow: 30s, halfLife: 24h)",
        "spec.churn.halfLife",
    ),
    "interval too short": Bad(
        {"rollout": {"interval": "1s"}}, "interval must be between 10s and 24h, e.g. 60s", "spec.rollout.interval"
    ),
    "quiet period over a day": Bad(
        {"rollout": {"quietPeriod": "24h0m0.001s"}},
        "quietPeriod must be between 0s and 24h, e.g. 10m",
        "spec.rollout.quietPeriod",
    ),
    "cooldown shorter than interval": Bad(
        {"rollout": {"interval": "5m", "cooldown": "1m"}},
        "cooldown must not be shorter than interval (e.g. interval: 60s, cooldown: 6h)",
        "spec.rollout.cooldown",
    ),
}
