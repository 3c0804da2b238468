"""Operating a node: /healthz, /readyz and Prometheus /metrics. Imports config, store,
meter and proxy (it reports on a proxy node); composed into a node by the cli."""
