"""The AWS edge: EC2 lookups (cached, with stale and table fallbacks) and the embedded instance table.

The names load lazily: the simulator and planner read the instance table without importing boto3."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from warmpool.aws.cache import Answer
    from warmpool.aws.ec2 import Ec2Client, Ec2Stats, instance_id_from_provider_id
    from warmpool.aws.errors import Ec2Unavailable
    from warmpool.aws.instance_table import FALLBACK_LIMITS, fallback_limits

_WHERE = {
    "Answer": "warmpool.aws.cache",
    "Ec2Client": "warmpool.aws.ec2",
    "Ec2Stats": "warmpool.aws.ec2",
    "instance_id_from_provider_id": "warmpool.aws.ec2",
    "Ec2Unavailable": "warmpool.aws.errors",
    "FALLBACK_LIMITS": "warmpool.aws.instance_table",
    "fallback_limits": "warmpool.aws.instance_table",
}

__all__ = [
    "FALLBACK_LIMITS",
    "Answer",
    "Ec2Client",
    "Ec2Stats",
    "Ec2Unavailable",
    "fallback_limits",
    "instance_id_from_provider_id",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
