"""Operating a node: /healthz, /readyz, Prometheus /metrics (a proxy node's
`ProxyNode.stats`) and the loopback admin listener. Imports config, store, meter and proxy
(it reports on a proxy node); composed into a node by the cli."""
