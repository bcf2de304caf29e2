"""`warmpool simulate` on bad input: one line naming the file and line (or the option) and exit code 2, for
every case of tests/sim_cases.py; and good input still runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.policy_cases import BAD_SPECS
from tests.sim_cases import BAD_POLICIES, BAD_STATICS, BAD_TRACES, EXIT_BAD_INPUT, HEADER, NODE, START, BadFile
from warmpool.api.manifest import MAX_POLICY_BYTES, PolicyFileError, parse_policy
from warmpool.cli import main

GOOD_TRACE = b"\n".join([HEADER, NODE, START, b'{"t":30,"type":"pod_stop","node":"n1","pod":"p1"}']) + b"\n"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test in a directory of its own holding a good trace, so messages name files as a user types them."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trace.jsonl").write_bytes(GOOD_TRACE)


def _simulate(*args: str) -> Result:
    return CliRunner().invoke(main, ["simulate", *args])


def _run_with_file(name: str, case: BadFile, *args: str) -> Result:
    Path(name).write_bytes(case.content)
    return _simulate(*args)


def _assert_one_line(result: Result, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.stderr == message + "\n"
    assert result.stdout == ""
    assert result.exit_code == exit_code


@pytest.mark.parametrize("case", BAD_TRACES)
def test_bad_trace(case: str) -> None:
    bad = BAD_TRACES[case]
    result = _run_with_file("trace.jsonl", bad, "--trace", "trace.jsonl")
    _assert_one_line(result, bad.message, bad.exit_code)


@pytest.mark.parametrize("case", BAD_POLICIES)
def test_bad_policy(case: str) -> None:
    bad = BAD_POLICIES[case]
    result = _run_with_file("policy.yaml", bad, "--policy", "policy.yaml")
    _assert_one_line(result, bad.message, bad.exit_code)


@pytest.mark.parametrize("case", BAD_STATICS)
def test_bad_static(case: str) -> None:
    text, message = BAD_STATICS[case]
    _assert_one_line(_simulate("--trace", "trace.jsonl", "--static", text), message)


def test_the_same_static_twice() -> None:
    result = _simulate("--static", "WARM_IP_TARGET=2", "--static", "WARM_IP_TARGET=2")
    _assert_one_line(result, "--static: 'WARM_IP_TARGET=2' is given twice")


def test_missing_files() -> None:
    _assert_one_line(_simulate("--trace", "nope.jsonl"), "nope.jsonl: cannot read: No such file or directory")
    _assert_one_line(_simulate("--policy", "nope.yaml"), "nope.yaml: cannot read: No such file or directory")


def test_plot_into_a_missing_directory() -> None:
    _assert_one_line(
        _simulate("--trace", "trace.jsonl", "--plot", "no/such/dir/out.png"),
        "--plot: cannot write no/such/dir/out.png: no such directory",
    )


@pytest.mark.parametrize("case", BAD_SPECS)
def test_a_policy_file_is_checked_by_the_api_models(case: str) -> None:
    """Every bad spec of the admission table, as a manifest on disk, fails with the same message."""
    bad = BAD_SPECS[case]
    manifest = {"apiVersion": "warmpool.io/v1alpha1", "kind": "WarmPoolPolicy", "spec": bad.spec}
    data = json.dumps(manifest).encode()  # JSON is YAML
    with pytest.raises(PolicyFileError) as error:
        parse_policy(data)
    assert error.value.line == 1
    if len(data) > MAX_POLICY_BYTES:  # the 1 MiB cases: refused before parsing
        assert error.value.reason.startswith("larger than")
    else:
        assert bad.model_message in error.value.reason
        # Reported at the field the API server names (map keys and list items may be one level finer there).
        path = re.sub(r"\[([^\]0-9][^\]]*)\]", r".\1", bad.path)
        parent = re.escape(re.sub(r"\[[0-9]+\]$", "", path))
        assert re.search("(^|; )" + parent + r"[.\[:]", error.value.reason), error.value.reason


def test_good_trace_policy_and_statics_run() -> None:
    # A byte-order mark and CRLF line ends are fine.
    Path("trace.jsonl").write_bytes(b"\xef\xbb\xbf" + GOOD_TRACE.replace(b"\n", b"\r\n"))
    Path("policy.yaml").write_bytes(
        b"apiVersion: warmpool.io/v1alpha1\nkind: WarmPoolPolicy\nmetadata: {name: p}\n"
        b"spec:\n  churn: {burstWindow: 45s}\n  rollout: {interval: 30s, cooldown: 1h30m}\n"
    )
    statics = ["WARM_IP_TARGET=2,MINIMUM_IP_TARGET=+5", "WARM_ENI_TARGET=007"]
    args = ["--trace", "trace.jsonl", "--policy", "policy.yaml", "--json"]
    result = _simulate(*args, *(a for s in statics for a in ("--static", s)))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    report = json.loads(result.stdout)
    assert set(statics) <= set(report["strategies"]), report["strategies"].keys()
