"""Which VPC CNI version runs, read from the aws-node image, and the rules that changed between versions.

VPC CNI issue #1872: before PR #1975, a new ENI was asked for `short` IPs (or prefixes) uncapped
(`GetENIResourcesToAllocate`), and `WaitForENIAndIPsAttached` then waited, for minutes, for more addresses than
one ENI can hold. PR #1975 caps the request at one ENI's worth. Read in the source: the cap is in the v1.11.4
tag (the PR was merged into the 1.11 release branch, see its CHANGELOG) and in every tag from v1.12.0; v1.11.3
and older lack it.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class CniVersion(NamedTuple):
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"


# The first release whose new-ENI request is capped at one ENI's worth (PR #1975).
ENI_REQUEST_CAPPED_SINCE = CniVersion(1, 11, 4)
# The release whose ipamd the pool model (pool.py, node.py) follows: the simulator plans for this version.
MODELED_VERSION = CniVersion(1, 22, 0)

# A tag such as v1.18.3, v1.18.3-eksbuild.1, 1.12.0 or v1.11.4-rc1 (a release candidate counts as its release).
_TAG_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+.].*)?")


def cni_version_from_image(image: str | None) -> CniVersion | None:
    """The VPC CNI version in an aws-node image reference, e.g.
    `602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.18.3-eksbuild.1` -> v1.18.3.
    None when the reference has no version tag (`:latest`, a digest only, no tag at all)."""
    if not image:
        return None
    ref = image.strip().split("@", 1)[0]  # a digest pins the bytes, not the version; the tag still names it
    name = ref.rsplit("/", 1)[-1]  # a registry host may carry a port: only the last path part has the tag
    _, sep, tag = name.partition(":")
    if not sep:
        return None
    match = _TAG_VERSION.fullmatch(tag)
    if match is None:
        return None
    return CniVersion(int(match[1]), int(match[2]), int(match[3]))


def eni_request_uncapped(version: CniVersion | None, *, cautious: bool = True) -> bool:
    """Whether this version asks a new ENI for more than it holds (#1872), so WARM_IP_TARGET (and
    MINIMUM_IP_TARGET, WARM_PREFIX_TARGET) must stay within what one ENI holds. An unknown version counts as
    affected when `cautious`."""
    if version is None:
        return cautious
    return version < ENI_REQUEST_CAPPED_SINCE
