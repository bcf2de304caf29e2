"""The AWS edge: EC2 lookups (cached, with stale and table fallbacks) and the embedded instance table."""

from warmpool.aws.cache import Answer
from warmpool.aws.ec2 import Ec2Client, Ec2Stats, instance_id_from_provider_id
from warmpool.aws.errors import Ec2Unavailable
from warmpool.aws.instance_table import FALLBACK_LIMITS, fallback_limits

__all__ = [
    "FALLBACK_LIMITS",
    "Answer",
    "Ec2Client",
    "Ec2Stats",
    "Ec2Unavailable",
    "fallback_limits",
    "instance_id_from_provider_id",
]
