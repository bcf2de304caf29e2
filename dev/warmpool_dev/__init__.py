"""Development harness of warmpool, kept out of the shipped package: the local control plane built from Go
modules (`devcluster`) and the KWOK end-to-end harness and demo (`e2e`). Installed from a checkout by
`make setup` (`pip install -e dev/`); `warmpool dev-cluster` and `warmpool demo` use it when present."""
