"""Good and bad WarmPoolPolicy specs, shared by the model unit tests and the API-server integration tests, so
the pydantic validators and the CRD's schema + CEL rules are held to the same table."""

from __future__ import annotations

from typing import Any

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
        },
        "subnetReserve": 0,
        "rollout": {
            "cooldown": "1h30m",
            "deadBand": 0,
            "deadBandRatio": 0,
            "quietPeriod": "0s",
            "interval": "30s",
            "allowForeignOwner": True,
        },
        "dryRun": True,
        "paused": False,
    },
}

# name -> (spec, a fragment of the message the user must see)
BAD_SPECS: dict[str, tuple[dict[str, Any], str]] = {
    "min above max": (
        {"manage": [{"name": "WARM_IP_TARGET", "min": 5, "max": 2}]},
        "min must not be greater than max",
    ),
    "unknown variable": ({"manage": [{"name": "WARM_FOO_TARGET"}]}, "WARM_FOO_TARGET"),
    "variable managed twice": (
        {"manage": [{"name": "WARM_IP_TARGET"}, {"name": "WARM_IP_TARGET"}]},
        "WARM_IP_TARGET",
    ),
    "ENI and IP targets together": (
        {"manage": [{"name": "WARM_ENI_TARGET"}, {"name": "WARM_IP_TARGET"}]},
        "ipamd ignores WARM_ENI_TARGET when WARM_IP_TARGET is set",
    ),
    "prefix and IP targets together": (
        {"mode": "Prefix", "manage": [{"name": "WARM_PREFIX_TARGET"}, {"name": "WARM_IP_TARGET"}]},
        "ipamd ignores WARM_PREFIX_TARGET when WARM_IP_TARGET is set",
    ),
    "ENI target in prefix mode": (
        {"mode": "Prefix", "manage": [{"name": "WARM_ENI_TARGET"}]},
        "WARM_ENI_TARGET is not used in Prefix mode",
    ),
    "prefix target in secondary mode": (
        {"mode": "SecondaryIP", "manage": [{"name": "WARM_PREFIX_TARGET"}]},
        "WARM_PREFIX_TARGET is only used in Prefix mode",
    ),
    "minimum IP alone": (
        {"manage": [{"name": "MINIMUM_IP_TARGET"}]},
        "MINIMUM_IP_TARGET needs WARM_IP_TARGET managed too",
    ),
    "quantile zero": ({"churn": {"burstQuantile": 0}}, "burstQuantile"),
    "quantile above one": ({"churn": {"burstQuantile": 1.5}}, "burstQuantile"),
    "malformed duration": ({"churn": {"burstWindow": "ten seconds"}}, "burstWindow"),
    "half-life shorter than window": (
        {"churn": {"burstWindow": "5m", "halfLife": "1m"}},
        "halfLife must be longer than burstWindow",
    ),
    "interval too short": ({"rollout": {"interval": "1s"}}, "interval must be at least 10s"),
    "cooldown shorter than interval": (
        {"rollout": {"interval": "5m", "cooldown": "1m"}},
        "cooldown must not be shorter than interval",
    ),
    "reserve of 100%": ({"subnetReserve": 1}, "subnetReserve"),
    "negative bound": ({"manage": [{"name": "WARM_IP_TARGET", "min": -1}]}, "min"),
    "absurd bound": ({"manage": [{"name": "WARM_IP_TARGET", "max": 100000}]}, "max"),
    "unknown mode": ({"mode": "Turbo"}, "mode"),
    "nothing managed": ({"manage": []}, "manage"),
    "bad selector operator": (
        {"nodeSelector": {"matchExpressions": [{"key": "a", "operator": "Like"}]}},
        "operator",
    ),
}
