"""The README's "Try it against a local control plane", run as written: it must reach a recommendation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from warmpool_dev.devcluster import binaries

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Try it against a local control plane"
# A bound on waiting, not a measured speed: the README promises seconds, the machine may be busy.
RECOMMENDATION_TIMEOUT = 120


def quickstart_commands(readme: str) -> list[str]:
    """The shell lines of the section's first ```sh block, comments stripped."""
    section = readme[readme.index(SECTION) :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, f"no ```sh block under {SECTION!r}"
    lines = []
    for raw in block.group(1).splitlines():
        line = re.sub(r"\s+#.*$", "", raw).strip()  # the block's comments start after whitespace
        if line:
            lines.append(line)
    return lines


def script_for(commands: list[str]) -> str:
    """The block as one bash script. The one line that blocks (`warmpool run`) runs in the background, as in a
    second terminal; once the policy shows a recommendation the next lines run and the operator is stopped."""
    run = next(i for i, c in enumerate(commands) if c.startswith("warmpool run"))
    down = next(i for i, c in enumerate(commands) if c.startswith("warmpool dev-cluster down"))
    wait = f"""
start=$SECONDS
until [ -n "$(kubectl get wpp -o jsonpath='{{.items[*].status.recommendedSummary}}')" ]; do
  kill -0 "$OPERATOR" 2>/dev/null || {{ echo "the operator exited" >&2; exit 3; }}
  [ $((SECONDS - start)) -lt {RECOMMENDATION_TIMEOUT} ] || {{ echo "no recommendation" >&2; exit 4; }}
  sleep 1
done
echo "RECOMMENDED_AFTER=$((SECONDS - start))s"
"""
    return "\n".join(
        [
            "set -euo pipefail",
            "OPERATOR=",
            # Whatever happens, nothing stays running: the operator, then the dev cluster.
            'trap \'[ -z "$OPERATOR" ] || kill "$OPERATOR" 2>/dev/null; warmpool dev-cluster down\' EXIT',
            *commands[:run],
            f'{commands[run]} > "$QUICKSTART_OPERATOR_LOG" 2>&1 &',
            "OPERATOR=$!",
            wait,
            *commands[run + 1 : down],
            'kill "$OPERATOR"; wait "$OPERATOR" || true; OPERATOR=',
            *commands[down:],
        ]
    )


def column(table: str, name: str, row: str) -> str:
    """One cell of kubectl's aligned table output (cells may be empty, so no split())."""
    header = next(line for line in table.splitlines() if line.startswith("NAME "))
    line = next(line for line in table.splitlines() if line.startswith(row + " "))
    start = header.index(name)
    rest = header[start + len(name) :]
    end = start + len(name) + (len(rest) - len(rest.lstrip())) if rest.strip() else len(line)
    return line[start:end].strip()


def test_readme_quickstart_reaches_a_recommendation(tmp_path: Path) -> None:
    commands = quickstart_commands((REPO / "README.md").read_text())
    assert commands[0].startswith("make setup")
    assert commands[-1] == "warmpool dev-cluster down"
    script = tmp_path / "quickstart.sh"
    script.write_text(script_for(commands))
    operator_log = tmp_path / "operator.log"
    # A cache home of its own for the dev-cluster state; the already built binaries are passed in.
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "WARMPOOL_CONTROL_PLANE_BIN": str(binaries.bin_dir()),
        "QUICKSTART_OPERATOR_LOG": str(operator_log),
    }
    try:
        done = subprocess.run(
            ["bash", str(script)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
        )
    finally:  # the script's trap stops everything; this is for a script killed by the timeout
        subprocess.run([sys.executable, "-m", "warmpool.cli", "dev-cluster", "down"], env=env, capture_output=True)
    log = operator_log.read_text(errors="replace") if operator_log.exists() else ""
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\noperator:\n{log[-3000:]}"
    print(next(line for line in done.stdout.splitlines() if line.startswith("RECOMMENDED_AFTER=")))
    # `kubectl get wpp -o wide`, as the README has it, shows a recommendation for the pods `up` created.
    assert re.fullmatch(r"WARM_IP_TARGET=\d+,MINIMUM_IP_TARGET=\d+", column(done.stdout, "RECOMMENDED", "default"))
    assert column(done.stdout, "PODS", "default") == "12"
    assert column(done.stdout, "NODES", "default") == "3"
    # Per-tick timer logs are off by default; the plan's own line is there.
    assert "Timer 'plan_policy' succeeded" not in log
    assert "planned default: recommended WARM_IP_TARGET=" in log
    # `down` left no dev cluster behind.
    assert not (tmp_path / "cache" / "warmpool" / "dev-cluster" / "state.json").exists()
