"""A model of the VPC CNI's IP address manager (ipamd): limits, pool arithmetic and the per-node pool.

One copy of ipamd's rules, used by both the planner and the simulator. See ../shared/reference/vpc-cni.md.
"""
