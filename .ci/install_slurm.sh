#!/usr/bin/env bash
# Install a minimal single-node SLURM (controller + node daemon + client
# tools + munge) from Debian packages, for tests/slurm_cluster.py.
# Idempotent: exits 0 immediately when everything is already installed.
# Needs root (or sudo) and apt.  No systemd is needed: the test helper starts
# the daemons by hand.
set -euo pipefail

PKGS=(slurmctld slurmd slurm-client munge)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -eq 0 ] \
   && command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
   && command -v sbatch >/dev/null && command -v munged >/dev/null; then
    echo "SLURM already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}"

# munge needs a key; the Debian package normally creates one, make sure.
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then
        $SUDO mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    $SUDO chown munge:munge /etc/munge/munge.key
    $SUDO chmod 400 /etc/munge/munge.key
fi
echo "SLURM installed: $(dpkg-query -W -f='${Version}' slurmctld)"
