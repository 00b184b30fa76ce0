#!/usr/bin/env bash
# Installs every build, run and test dependency of Troupe from Debian 12's
# package archive. Idempotent and non-interactive; runs as root or via sudo.
# This is the only install step anywhere: tests and scripts assume it ran.
set -euo pipefail

packages=(
  # build
  build-essential cmake ccache pkg-config
  # libraries (see docs/architecture.md for what each one is for)
  libcaf-dev libssl-dev
  libprotobuf-dev protobuf-compiler
  liblmdb-dev lmdb-utils
  libasio-dev
  libspdlog-dev
  libcli11-dev libyaml-cpp-dev
  # the interactive console: line editing, history, completion
  libedit-dev
  libcpp-httplib-dev
  # containers: runc runs them, libarchive unpacks image layers (linked
  # statically, with the static archives of the compressors it reads)
  runc libarchive-dev libzstd-dev liblzma-dev libbz2-dev zlib1g-dev
  # images: the registry client speaks HTTP(S) through libcurl
  libcurl4-openssl-dev
  # tests
  doctest-dev busybox-static iproute2
  # console_test runs the zsh completion script (bash is always there)
  zsh
  # registry tests: a real OCI registry, a real OCI client that pushes test
  # images to it, and htpasswd for its basic auth
  docker-registry skopeo apache2-utils
  # run
  procps
)

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh: not root and no sudo: cannot install packages" >&2; exit 1; }
  sudo="sudo"
fi

# Debian's docker-registry package starts a registry on :5000, on all
# interfaces, where an init system runs. Tests start their own on loopback
# only: no package may start a service while installing (policy-rc.d), and
# one that was started before is stopped.
stop_packaged_registry() {
  if command -v systemctl >/dev/null && systemctl is-enabled --quiet docker-registry 2>/dev/null; then
    $sudo systemctl disable --now docker-registry || true
  fi
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  stop_packaged_registry
  echo "setup.sh: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  own_policy=1
fi
trap '[ -z "$own_policy" ] || $sudo rm -f "$policy"' EXIT
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
stop_packaged_registry
