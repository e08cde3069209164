#!/bin/sh
# Make sure redis-server is installed, for the rate-limit tests (which start
# their own server on a free port). Idempotent: does nothing when it is there.
# As root it installs Debian's redis-server package; otherwise it says what to run.
set -eu

if command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "redis-server is not installed; run as root: apt-get install -y redis-server" >&2
    exit 1
fi
echo "installing redis-server (Debian's package) for the rate-limit tests"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends redis-server \
  || (apt-get update -q && apt-get install -y -q --no-install-recommends redis-server)
