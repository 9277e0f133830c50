#!/usr/bin/env bash
# Installs the Debian packages named as arguments, only those missing, so
# `make test` and `make demo` work on a fresh machine and cost nothing after.
set -euo pipefail
missing=()
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "missing Debian packages: ${missing[*]} (run as root, or install them with apt-get)" >&2
	exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Never let a package start its daemon on the host (an sshd on 0.0.0.0:22
# would take the test nodes' port): policy-rc.d 101 forbids service starts.
cleanup_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	cleanup_policy=1
fi
trap '[ $cleanup_policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
