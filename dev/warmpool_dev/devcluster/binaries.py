"""Finds (and if needed builds) the Go-built control-plane binaries: kube-apiserver, etcd, kubectl, kwok, helm."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REQUIRED = ("kube-apiserver", "etcd", "kubectl")


class ControlPlaneUnavailable(RuntimeError):
    """The binaries are missing and could not be built."""


def repo_root() -> Path:
    """The source checkout this package was installed (editable) from."""
    return Path(__file__).resolve().parents[3]


def build_script() -> Path:
    return repo_root() / "hack" / "build-control-plane.sh"


def bin_dir(build: bool = True) -> Path:
    """Directory holding the binaries.

    `WARMPOOL_CONTROL_PLANE_BIN` points at prebuilt binaries; otherwise the repo's build script is run. It is a
    no-op (about a second) when its cache already holds the pinned versions, and a cold build otherwise.
    """
    override = os.environ.get("WARMPOOL_CONTROL_PLANE_BIN")
    if override:
        path = Path(override)
    else:
        script = build_script()
        if not script.exists():
            raise ControlPlaneUnavailable(
                f"{script} not found: set WARMPOOL_CONTROL_PLANE_BIN to a directory with {', '.join(REQUIRED)}"
            )
        if not build:
            raise ControlPlaneUnavailable("control-plane binaries not located and building is disabled")
        result = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ControlPlaneUnavailable(f"{script} failed:\n{result.stderr[-4000:]}")
        path = Path(result.stdout.strip().splitlines()[-1])
    missing = [b for b in REQUIRED if not (path / b).is_file()]
    if missing:
        raise ControlPlaneUnavailable(f"{path} lacks {', '.join(missing)}")
    return path
