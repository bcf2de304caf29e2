"""Which EKS cluster this is, for the add-on API, when the settings do not say (WARMPOOL_EKS_CLUSTER_NAME).

Where the name is found, in this order (each checked against a source, not guessed):
- the ipamd container's env `CLUSTER_NAME`: the VPC CNI reads it to tag the ENIs it creates
  (`cluster.k8s.amazonaws.com/name`, pkg/awsutils/awsutils.go); installers such as kops set it;
- the node label `alpha.eksctl.io/cluster-name` that eksctl puts on its nodes;
- the EC2 tags of the nodes' instances (DescribeInstances on the id in their providerID): `eks:cluster-name`
  (EKS managed node groups; the VPC CNI's cni-metrics-helper reads the same tag first, pkg/publisher),
  `aws:eks:cluster-name`, `alpha.eksctl.io/cluster-name`, then the key `kubernetes.io/cluster/NAME` with
  value `owned` or `shared` (eksctl, Karpenter, self-managed node groups).
The pure parts are here; `discover` makes the one EC2 call, blocking (run it in a thread)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from warmpool.aws.ec2 import Ec2Client
from warmpool.aws.errors import Ec2Unavailable

ENV_NAME = "CLUSTER_NAME"
NODE_LABELS = ("alpha.eksctl.io/cluster-name",)
INSTANCE_TAGS = ("eks:cluster-name", "aws:eks:cluster-name", "alpha.eksctl.io/cluster-name")
CLUSTER_TAG_PREFIX = "kubernetes.io/cluster/"
MAX_INSTANCES = 5  # a few nodes are enough: they all belong to the one cluster


@dataclass(frozen=True, slots=True)
class Found:
    name: str | None
    source: str  # where it came from, or why it was not found


def from_env(env: Mapping[str, str]) -> str | None:
    return env.get(ENV_NAME, "").strip() or None


def from_labels(labels: Mapping[str, str]) -> str | None:
    return next((labels[k].strip() for k in NODE_LABELS if labels.get(k, "").strip()), None)


def from_tags(tags: Mapping[str, str]) -> str | None:
    for key in INSTANCE_TAGS:
        if tags.get(key, "").strip():
            return tags[key].strip()
    owned = sorted(k.removeprefix(CLUSTER_TAG_PREFIX) for k, v in tags.items() if k.startswith(CLUSTER_TAG_PREFIX))
    owned = [name for name in owned if name and tags[CLUSTER_TAG_PREFIX + name] in ("owned", "shared")]
    return owned[0] if len(owned) == 1 else None  # tagged for two clusters: do not pick one


def discover(
    env: Mapping[str, str],
    nodes: Iterable[tuple[Mapping[str, str], str]],
    ec2: Ec2Client,
    tried: set[str] | None = None,
) -> Found:
    """The cluster name from the ipamd env, then node labels, then the tags of up to MAX_INSTANCES nodes'
    instances not in `tried` (which gains the ones asked about: a later call asks only about new nodes).
    `nodes` are (labels, EC2 instance id) pairs. `source` is "" when nothing new could be asked."""
    name = from_env(env)
    if name:
        return Found(name, f"aws-node env {ENV_NAME}")
    nodes = list(nodes)
    for labels, _ in nodes:
        name = from_labels(labels)
        if name:
            return Found(name, f"node label {NODE_LABELS[0]}")
    seen = tried if tried is not None else set()
    instances = sorted({i for _, i in nodes if i and i not in seen})[:MAX_INSTANCES]
    tried_text = (
        f"not in WARMPOOL_EKS_CLUSTER_NAME, aws-node env {ENV_NAME}, node label {NODE_LABELS[0]}, nor the tags "
        f"{', '.join(INSTANCE_TAGS)} or {CLUSTER_TAG_PREFIX}NAME of "
    )
    if not instances:
        if seen:
            return Found(None, "")
        return Found(None, tried_text + "any node's instance (no node names an EC2 instance in its providerID)")
    try:
        answer = ec2.instance_tags(instances)
    except Ec2Unavailable as error:  # not marked as tried: asked again next time
        return Found(
            None, tried_text + f"instances {', '.join(instances)}: EC2 DescribeInstances failed: {error.cause}"
        )
    seen.update(instances)
    for instance in instances:
        name = from_tags(dict(answer.get(instance, ())))
        if name:
            return Found(name, f"EC2 tags of instance {instance}")
    return Found(None, tried_text + f"instances {', '.join(instances)}")
