"""A churn scenario end to end: the operator against KWOK under a replayed trace, watched once a second, and
the simulator's prediction for the trace as it was actually played."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from warmpool.api.v1alpha1 import WarmPoolPolicySpec
from warmpool.ipamd.limits import IpMode
from warmpool.sim.engine import simulate
from warmpool.sim.strategies import PlannerStrategy
from warmpool.sim.trace import Trace
from warmpool_dev.e2e.harness import KwokEnv, wait_for
from warmpool_dev.e2e.kube import container_env

MANAGED = ("WARM_IP_TARGET", "MINIMUM_IP_TARGET")


@dataclass(frozen=True)
class Row:
    """One observation, `kubectl get wpp -o wide` style, plus the DaemonSet it agrees (or not) with."""

    t: float  # wall seconds since the replay's t0
    applied: str
    recommended: str
    reason: str  # the Applied condition's reason: NotQuiet, Cooldown, InSync, ...
    message: str
    nodes: int
    pods: int
    generation: int
    ds_env: str

    def line(self) -> str:
        return (
            f"{self.t:6.0f}s  nodes={self.nodes:<4d} pods={self.pods:<5d} applied={self.applied or '-':<38s} "
            f"recommended={self.recommended or '-':<38s} {self.reason}"
        )


def summary(env: Mapping[str, str]) -> str:
    return ",".join(f"{k}={env[k]}" for k in MANAGED if k in env)


def condition(status: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), {})


@dataclass
class Observer:
    """Polls the policy and aws-node every `every` seconds in a thread; `rows` keep each distinct state."""

    env: KwokEnv
    policy: str
    t0: Callable[[], float]
    every: float = 1.0
    on_row: Callable[[Row], None] | None = None
    rows: list[Row] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Observer:
        self._thread = threading.Thread(target=self._run, name="observer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def sample(self) -> Row:
        status = self.env.policy(self.policy).get("status") or {}
        ds = self.env.aws_node()
        applied = condition(status, "Applied")
        return Row(
            t=time.time() - self.t0(),
            applied=status.get("appliedSummary") or "",
            recommended=status.get("recommendedSummary") or "",
            reason=applied.get("reason", ""),
            message=applied.get("message", ""),
            nodes=int(status.get("nodes") or 0),
            pods=int(status.get("podsObserved") or 0),
            generation=int(ds.metadata.generation or 0),
            ds_env=summary(container_env(ds)),
        )

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                row = self.sample()
            except Exception:  # a missed sample is harmless; the next one comes in a second
                continue
            last = self.rows[-1] if self.rows else None
            if last is None or (row.applied, row.recommended, row.reason, row.nodes, row.generation) != (
                last.applied,
                last.recommended,
                last.reason,
                last.nodes,
                last.generation,
            ):
                self.rows.append(row)
                if self.on_row is not None:
                    self.on_row(row)


def predict(realized: Trace, spec: Mapping[str, Any], mode: IpMode = IpMode.SECONDARY) -> list[tuple[float, str]]:
    """The simulator's warmpool loop on the played trace with the same policy: [(time, settings)] of each
    change it makes (the first entry, the starting defaults, left out)."""
    strategy = PlannerStrategy(WarmPoolPolicySpec.model_validate(dict(spec)))
    history = simulate(realized, strategy, mode).metrics.settings_history
    return list(history[1:])


@dataclass
class ScenarioResult:
    realized: Trace
    rows: list[Row]
    change_times: list[float]  # wall seconds since t0 at which aws-node's generation went up
    final_status: dict[str, Any]
    final_env: dict[str, str]
    generations: tuple[int, int]  # before, after


def run_scenario(
    env: KwokEnv,
    trace: Trace,
    spec: Mapping[str, Any],
    speed: float,
    policy: str = "churn",
    settle: float = 30.0,
    timeout: float = 900.0,
    on_row: Callable[[Row], None] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> ScenarioResult:
    """Start the operator with `spec`, wait for its first plan, replay `trace` at `speed`, then wait until the
    operator has changed aws-node and `settle` more seconds passed with no further change (or `timeout`)."""
    assert env.driver is not None
    driver = env.driver
    driver.speed = speed
    driver.seed(trace)  # the cluster the trace starts from is there before the operator, as the simulator has it
    env.create_policy(policy, spec)
    start_gen = int(env.aws_node().metadata.generation or 0)
    env.start_operator()
    began = time.monotonic()

    def first_plan() -> str | None:
        env.check_alive()
        planned: str | None = (env.policy(policy).get("status") or {}).get("lastPlannedTime")
        return planned

    wait_for(first_plan, "the operator's first plan", timeout=120)
    log(f"operator planned for the first time {time.monotonic() - began:.1f}s after start; replaying the trace")
    observer = Observer(env, policy, t0=lambda: driver.t0 or time.time(), on_row=on_row).start()
    try:
        driver.replay(trace)
        stats = driver.stats
        log(f"trace played ({stats.applied} calls, {stats.errors} errors, max lag {stats.max_lag:.2f}s)")
        deadline = time.monotonic() + timeout

        def changed_and_settled() -> bool:
            env.check_alive()
            changes = [r for r in observer.rows if r.generation > start_gen]
            return bool(changes) and time.time() - driver.t0 - changes[0].t >= settle

        while not changed_and_settled():
            if time.monotonic() > deadline:
                break
            time.sleep(1.0)
    finally:
        observer.stop()
    rows = observer.rows
    change_times: list[float] = []
    gen = start_gen
    for r in rows:
        if r.generation > gen:
            change_times.append(r.t)
            gen = r.generation
    ds = env.aws_node()
    return ScenarioResult(
        # Up to now, not to the last change seen: the simulator must get as long as the operator had.
        realized=driver.realized(trace, pad_until=time.time() - driver.t0),
        rows=rows,
        change_times=change_times,
        final_status=env.policy(policy).get("status") or {},
        final_env=container_env(ds),
        generations=(start_gen, int(ds.metadata.generation or 0)),
    )
