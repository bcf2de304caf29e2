"""The warm pool simulator: churn traces, generated scenarios, a discrete-event engine over per-node ipamd
pools (`warmpool.ipamd.node`), strategies to compare, metrics and reports."""
