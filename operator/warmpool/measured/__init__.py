"""Measured pool state: ipamd's own Prometheus metrics, read from the aws-node pods and set beside the operator's
estimate. `exposition` reads one scrape (pure), `aggregate` turns scrapes into per-instance-type figures (pure),
`scrape` is the I/O edge (the API server's pod proxy or the node's address, asyncio)."""
