"""A moto EC2 server on loopback standing in for the account KWOK's nodes 'run' in: one subnet per zone, and an
instance per node so that each node's providerID names an instance whose subnet EC2 can tell the operator."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

REGION = "us-east-1"
AMI = "ami-12345678"  # moto does not check that the image exists
# Dummy credentials, and every way to reach a real account masked, for the operator subprocess too.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}


def stop_moto_server(server: Any) -> None:
    """Stop a ThreadedMotoServer and close its listening socket. `stop()` alone only ends serve_forever(): new
    connections would queue in the listen backlog and time out instead of being refused at once."""
    server.stop()
    wsgi = getattr(server, "_server", None)
    if wsgi is not None:
        wsgi.server_close()


@dataclass
class MotoEc2:
    """Start with `start()`, stop with `stop()`; `subnets` maps zone -> subnet id once `create_network` ran."""

    subnets: dict[str, str] = field(default_factory=dict)
    _server: Any = None
    port: int = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def operator_env(self) -> dict[str, str]:
        return {**AWS_ENV, "WARMPOOL_EC2_ENDPOINT_URL": self.endpoint_url, "WARMPOOL_AWS_REGION": REGION}

    def start(self) -> MotoEc2:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as error:  # moto is a dev extra
            raise RuntimeError("moto is not installed: run `make setup` (installs the dev extras)") from error
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            stop_moto_server(server)

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "ec2",
            region_name=REGION,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def create_network(self, zones: Iterable[str], prefix: int = 20) -> dict[str, str]:
        """A VPC 10.0.0.0/16 with one /`prefix` subnet per zone (a /20 is the scenarios' 4091 free IPs)."""
        ec2 = self.client()
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        step = 2 ** (32 - prefix)
        for i, zone in enumerate(sorted(set(zones))):
            base = i * step
            cidr = f"10.0.{base // 256}.{base % 256}/{prefix}"
            self.subnets[zone] = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"][
                "SubnetId"
            ]
        return self.subnets

    def free_ips(self) -> dict[str, int]:
        """zone -> AvailableIpAddressCount, as the operator's DescribeSubnets sees it."""
        by_id = {v: k for k, v in self.subnets.items()}
        found = self.client().describe_subnets(SubnetIds=list(by_id))["Subnets"]
        return {by_id[s["SubnetId"]]: int(s["AvailableIpAddressCount"]) for s in found}

    def run_instances(self, instance_type: str, zone: str, count: int = 1) -> list[str]:
        reply = self.client().run_instances(
            ImageId=AMI, InstanceType=instance_type, MinCount=count, MaxCount=count, SubnetId=self.subnets[zone]
        )
        return [inst["InstanceId"] for inst in reply["Instances"]]
