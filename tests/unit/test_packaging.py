"""The shipped package carries only what production runs: the pure core imports without the I/O libraries,
and the wheel holds no development harness."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# A meta-path finder that refuses the I/O libraries, so an import of them anywhere in the pure core fails.
_BLOCKED_IMPORTS = """
import importlib.abc, sys
BLOCKED = {"kopf", "kubernetes", "boto3", "botocore", "aiohttp", "warmpool_dev"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked in this test: {name}")
        return None
sys.meta_path.insert(0, Block())
"""

PURE_MODULES = [
    "warmpool.ipamd.env",
    "warmpool.ipamd.pool",
    "warmpool.ipamd.node",
    "warmpool.planner",
    "warmpool.sim.engine",
    "warmpool.sim.strategies",
    "warmpool.sim.scenarios",
    "warmpool.sim.trace",
    "warmpool.step",
]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_core_imports_without_kopf_kubernetes_boto3(module: str) -> None:
    code = _BLOCKED_IMPORTS + f"import {module}\nprint('imported')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "imported" in done.stdout


def test_the_blocker_really_blocks() -> None:
    """Guards the test above: with the blocker in place, kopf itself cannot be imported."""
    code = _BLOCKED_IMPORTS + "import kopf"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "blocked in this test: kopf" in done.stderr


def test_wheel_holds_no_dev_harness(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("warmpool_operator-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("warmpool/planner/") for n in names)
    assert any(n.startswith("warmpool/ipamd/") for n in names)
    leaked = [n for n in names if n.startswith("warmpool_dev/") or "/devcluster/" in n or n.startswith("warmpool/e2e/")]
    assert leaked == []
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines() if "Requires-Dist" in line]
    assert not any("cryptography" in r for r in requires), requires
