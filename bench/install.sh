#!/bin/sh
# Installs every tool `python -m bench.proxies` uses (Debian/Ubuntu; root or sudo):
# wrk, curl, taskset, nginx (the origin), Squid and tinyproxy from apt; pproxy and proxy.py
# into .venv (pyproject's `bench` extra). Not part of `make test`.
set -eu
cd "$(dirname "$0")/.."
as_root=""
[ "$(id -u)" -eq 0 ] || as_root="sudo"
$as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq \
    wrk curl util-linux nginx-light squid tinyproxy
# Where an init system starts the packages' own services, stop them: the bench starts its
# own instances on loopback ports, and Squid's would hold 3128 on every address.
for service in nginx squid tinyproxy; do
    $as_root service "$service" stop >/dev/null 2>&1 || true
done
[ -x .venv/bin/pip ] || make venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[bench]'
