"""Where the EKS cluster name is found when the settings leave it out: env first, then node labels, then tags."""

from __future__ import annotations

from typing import Any

from warmpool.aws.cluster_name import discover, from_tags
from warmpool.aws.ec2 import Ec2Client
from warmpool.settings import Settings


class _NoEc2:
    """Anything EC2 is asked fails the test: the env and labels must answer first."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"EC2 was asked ({name}) though the name was found without it")


def no_ec2() -> Ec2Client:
    return Ec2Client(Settings(), client=_NoEc2())


def test_aws_node_env_wins_then_eksctl_label() -> None:
    nodes = [({"alpha.eksctl.io/cluster-name": "from-label"}, "i-1")]
    found = discover({"CLUSTER_NAME": "from-env"}, nodes, no_ec2())
    assert (found.name, found.source) == ("from-env", "aws-node env CLUSTER_NAME")
    found = discover({"CLUSTER_NAME": " "}, nodes, no_ec2())
    assert (found.name, found.source) == ("from-label", "node label alpha.eksctl.io/cluster-name")


def test_no_node_with_an_instance_says_so_without_asking_ec2() -> None:
    found = discover({}, [({}, "")], no_ec2())
    assert found.name is None
    assert "no node names an EC2 instance in its providerID" in found.source


def test_tag_precedence_and_ambiguity() -> None:
    assert from_tags({"eks:cluster-name": "a", "kubernetes.io/cluster/b": "owned"}) == "a"
    assert from_tags({"aws:eks:cluster-name": "c"}) == "c"
    assert from_tags({"kubernetes.io/cluster/b": "shared", "Name": "x"}) == "b"
    assert from_tags({"kubernetes.io/cluster/b": "owned", "kubernetes.io/cluster/d": "owned"}) is None
    assert from_tags({"kubernetes.io/cluster/b": "something-else"}) is None
    assert from_tags({}) is None


def test_instances_already_asked_about_are_not_asked_again() -> None:
    tried = {"i-1", "i-2"}
    found = discover({}, [({}, "i-1"), ({}, "i-2")], no_ec2(), tried)
    assert (found.name, found.source) == (None, "")  # nothing new to ask: the earlier answer stands
    assert tried == {"i-1", "i-2"}
