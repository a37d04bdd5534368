#!/usr/bin/env bash
# Makes sure a Docker engine answers on /var/run/docker.sock, for the sandbox's docker engine and its
# tests: installs Debian's docker.io (and debootstrap, which builds the local base image) when absent,
# and starts dockerd when nothing answers. As root only. The engine runs with the vfs storage driver,
# no iptables and no bridge (containers use the host's network), which works inside an unprivileged
# container too. Exit 0 when an engine answers; else 1 with the reason on stderr.
set -euo pipefail
LOG=${MIGRATOR_DOCKERD_LOG:-/var/log/migrator-dockerd.log}

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && answers; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "no Docker engine answers and starting one needs root: run 'sudo bash scripts/docker-engine.sh'," \
        "or start Docker yourself (Docker Desktop, systemctl start docker)" >&2
    exit 1
fi
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "no Docker engine answers and this machine has no apt-get to install docker.io; install Docker" >&2
        exit 1
    fi
    echo "installing docker.io and debootstrap with apt-get" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io debootstrap >/dev/null; then
        echo "apt-get could not install docker.io; check the apt sources, or install Docker yourself" >&2
        exit 1
    fi
fi
echo "starting dockerd (log: $LOG)" >&2
nohup dockerd --storage-driver=vfs --iptables=false --bridge=none >>"$LOG" 2>&1 &
for _ in $(seq 1 60); do
    if answers; then
        exit 0
    fi
    sleep 1
done
echo "dockerd did not answer within 60 s; last lines of $LOG:" >&2
tail -n 15 "$LOG" >&2
exit 1
