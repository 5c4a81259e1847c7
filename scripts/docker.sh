#!/usr/bin/env bash
# A running Docker engine for the image tests: installs Debian's docker.io, debootstrap (for
# `mpack base-image`) and docker-registry (push tests) whenever one is missing - also where an engine
# already runs - and starts dockerd in the background when `docker info` fails. Exits non-zero when no engine can be had (the tests then fail
# under CI=true and skip elsewhere).
set -uo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing ${missing[*]} (Debian packages)"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/tmp/mpack-docker-install.log 2>&1 \
    || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/tmp/mpack-docker-install.log 2>&1; } \
    || { echo "    could not install them (see /tmp/mpack-docker-install.log)"; exit 1; }
fi
if docker info >/dev/null 2>&1; then
  echo "==> Docker engine: running"
  exit 0
fi
echo "==> starting dockerd in the background (log: /tmp/mpack-dockerd.log)"
$SUDO sh -c 'nohup dockerd >/tmp/mpack-dockerd.log 2>&1 &'
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && { echo "    Docker engine ready"; exit 0; }
  sleep 0.5
done
echo "    dockerd did not start: $(tail -n 3 /tmp/mpack-dockerd.log 2>/dev/null)"
exit 1
