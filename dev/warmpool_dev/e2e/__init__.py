"""End to end under churn: KWOK fake nodes, a churn driver replaying simulator traces, the demo and its harness."""
