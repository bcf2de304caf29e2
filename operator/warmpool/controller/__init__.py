"""One reconcile pass per WarmPoolPolicy: gather inputs (indexes, EC2, DaemonSet), plan, guard, apply, report."""

from warmpool.controller.reconcile import reconcile_policy

__all__ = ["reconcile_policy"]
