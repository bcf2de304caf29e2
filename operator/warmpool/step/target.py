"""What the step reads off the target container: is it ipamd at all, who owns the managed entries, what a write
would leave behind, and whether ipamd and the aws-node entrypoint would accept that whole env."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from warmpool.api.v1alpha1 import Variable
from warmpool.apply.daemonset import FIELD_MANAGER, DaemonSetView
from warmpool.ipamd.env import ENABLE_PREFIX_DELEGATION, TARGET_NAMES
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.ipamd.safety import check_env, merge_env
from warmpool.ipamd.version import CniVersion
from warmpool.step.model import Write

# The VPC CNI's image repositories: ECR's amazon-k8s-cni, and the names public mirrors use.
IPAMD_IMAGES = ("amazon-k8s-cni", "amazon/aws-k8s-cni", "aws-node")
# Env names only ipamd reads: a container carrying one of them runs ipamd whatever its image is called.
IPAMD_ENV_PREFIXES = ("AWS_VPC_K8S_CNI_", "AWS_VPC_ENI_", "AWS_VPC_CNI_")
IPAMD_ENV = (*TARGET_NAMES, ENABLE_PREFIX_DELEGATION, "MAX_ENI", "ENABLE_POD_ENI")


def image_repository(image: str) -> str:
    """'602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.19.2' -> '.../amazon-k8s-cni'."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def runs_ipamd(image: str, env_names: Iterable[str]) -> bool:
    repo = image_repository(image)
    if any(repo == i or repo.endswith("/" + i) for i in IPAMD_IMAGES):
        return True
    return any(n in IPAMD_ENV or n.startswith(IPAMD_ENV_PREFIXES) for n in env_names)


def conflict_winner(policies: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
    """Oldest policy (creation time, then name) targeting a DaemonSet wins; the others report Conflict.
    RFC 3339 timestamps in UTC sort as text."""
    return min(policies, default=None)


def released(target: DaemonSetView, managed: Iterable[Variable]) -> tuple[str, ...]:
    """Env entries warmpool owns but the policy no longer manages: a write leaves them out, which releases them."""
    keep = {v.value for v in managed}
    return tuple(
        sorted(
            k for k, owners in target.owners.items() if FIELD_MANAGER in owners and k not in keep and k in TARGET_NAMES
        )
    )


def value_from(target: DaemonSetView, names: Iterable[str]) -> list[str]:
    return [n for n in names if (entry := target.env.get(n)) is not None and entry.value_from]


def env_after(env: Mapping[str, str], write: Write) -> dict[str, str]:
    """The container's plain env once `write` has landed."""
    return merge_env(env, write.values, write.release)


def refusals(
    target: DaemonSetView,
    write: Write,
    planned_mode: IpMode,
    limits: Iterable[InstanceLimits],
    cni_version: CniVersion | None,
) -> list[str]:
    """The last check before any write: the whole env the container would have afterwards, read as ipamd and the
    aws-node entrypoint read it (`ipamd.safety.check_env`), for the instance types in scope. Empty when safe."""
    unknowable = value_from(target, [ENABLE_PREFIX_DELEGATION, *(n for n in TARGET_NAMES if n not in write.release)])
    if unknowable:
        return [f"{', '.join(unknowable)} set with valueFrom: the env ipamd would run with cannot be checked"]
    after = env_after(target.plain_env(), write)
    verdict = check_env(after, limits, cni_version, written=[v.value for v in write.values])
    problems = []
    if verdict.mode is not planned_mode:
        problems.append(
            f"planned for {_mode_name(planned_mode)} mode but ipamd runs {_mode_name(verdict.mode)} mode "
            f"(ENABLE_PREFIX_DELEGATION={after.get(ENABLE_PREFIX_DELEGATION, '')!r})"
        )
    return problems + verdict.messages()


def _mode_name(mode: IpMode) -> str:
    return "Prefix" if mode is IpMode.PREFIX else "SecondaryIP"


def describe_env(env: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={env[k]}" for k in sorted(env))
