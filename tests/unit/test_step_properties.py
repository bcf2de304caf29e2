"""Whatever the aws-node env holds (garbage, spaces, 1, t, TRUE, negative, huge, empty), whatever the step writes is
safe as ipamd and the aws-node entrypoint read the whole resulting env, and the mode it planned for is the mode
ipamd runs. The expectations are restated here from reference/vpc-cni.md, not taken from the step's own check."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hypothesis_profiles import examples
from tests.unit.test_step import IMAGE, Tick, nodes, spec, target
from warmpool import step
from warmpool.aws.instance_table import FALLBACK_LIMITS
from warmpool.ipamd.env import go_atoi, go_parse_bool
from warmpool.ipamd.limits import IpMode

TARGETS = ("WARM_ENI_TARGET", "WARM_IP_TARGET", "MINIMUM_IP_TARGET", "WARM_PREFIX_TARGET")
OLD_IMAGE = "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.10.4-eksbuild.1"

HUGE = ["99999999999999999999", "9223372036854775807", "9223372036854775808"]  # beyond, at and past int64
numbers = st.sampled_from(
    ["0", "1", "2", "3", "5", "9", "16", "30", " 5", "5 ", "+3", "-3", "-0", "1_0", "0x10", "3.0", "", "abc", *HUGE]
)
booleans = st.sampled_from(["true", "false", "1", "0", "t", "f", "T", "F", "TRUE", "True", "FALSE", " true", "yes", ""])
maybe = st.none() | numbers


@st.composite
def envs(draw: Any) -> dict[str, str]:
    env = {"AWS_VPC_K8S_CNI_LOGLEVEL": "DEBUG"}
    for name in TARGETS:
        value = draw(maybe)
        if value is not None:
            env[name] = value
    flag = draw(st.none() | booleans)
    if flag is not None:
        env["ENABLE_PREFIX_DELEGATION"] = flag
    return env


policies = st.sampled_from(
    [
        spec(),
        spec(mode="SecondaryIP", manage=[{"name": "WARM_ENI_TARGET"}]),
        spec(mode="Prefix", manage=[{"name": "WARM_PREFIX_TARGET"}]),
        spec(manage=[{"name": "WARM_IP_TARGET", "min": 0, "max": 40}, {"name": "MINIMUM_IP_TARGET", "min": 5}]),
        spec(mode="Prefix"),
    ]
)


def ipamd_mode(env: dict[str, str]) -> IpMode:
    return IpMode.PREFIX if go_parse_bool(env.get("ENABLE_PREFIX_DELEGATION", "false")) else IpMode.SECONDARY


def count(env: dict[str, str], name: str, default: int) -> int:
    """ipamd's reading: Go's Atoi, negative or unparsable -> the default."""
    value = go_atoi(env[name]) if name in env else None
    return default if value is None or value < 0 else value


@settings(max_examples=examples(300), deadline=None)
@given(env=envs(), policy=policies, pods=st.integers(0, 25), old_cni=st.booleans())
def test_whatever_the_step_writes_is_safe_for_ipamd(
    env: dict[str, str], policy: dict[str, Any], pods: int, old_cni: bool
) -> None:
    image = OLD_IMAGE if old_cni else IMAGE
    tick = Tick(spec=policy, target=target(dict(env), image=image), snapshot=nodes(pods=pods))
    pending = tick.decide()
    if pending.write is None:
        return
    after = step.env_after(env, pending.write)
    mode = ipamd_mode(after)
    assert pending.rec.mode is mode  # planned for the mode ipamd runs
    for v, n in pending.write.values.items():
        assert after[v.value] == str(n)
        assert 0 <= n <= 1000
    warm_ip, minimum = count(after, "WARM_IP_TARGET", 0), count(after, "MINIMUM_IP_TARGET", 0)
    # A minimum without a warm target freezes nodes at the minimum.
    assert not (minimum > 0 and warm_ip == 0)
    if mode is IpMode.PREFIX:  # the entrypoint refuses to start when all three compare <= "0" as strings
        assert not all(after.get(k, "0") <= "0" for k in ("WARM_PREFIX_TARGET", "WARM_IP_TARGET", "MINIMUM_IP_TARGET"))
    for v in pending.write.values:  # every written target is a count ipamd can parse
        assert go_atoi(after[v.value]) is not None
    written = {v.value for v in pending.write.values}
    if old_cni and mode is IpMode.SECONDARY and "WARM_IP_TARGET" in written:
        # Before v1.11.4 a warm target above one ENI's IPs makes new ENIs take minutes (#1872).
        assert warm_ip <= FALLBACK_LIMITS["m5.large"].ips_per_eni(mode)
