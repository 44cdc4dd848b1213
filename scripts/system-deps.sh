#!/usr/bin/env bash
# Debian packages strait needs before `npm install` can build it: a C++ toolchain, and the headers node-rdkafka's
# librdkafka build looks for (without them it silently builds without zstd, lz4, SSL or SASL). Java 17 and Maven run
# the local Kafka and ZooKeeper. Installs what is missing when run as root; otherwise says what to install.
# Runs as npm's preinstall hook and from .ci/run. (Defining preinstall switches off npm's implicit `node-gyp rebuild`
# for binding.gyp, which is why package.json names its install script explicitly.)
set -u
command -v dpkg >/dev/null 2>&1 || exit 0 # not Debian: nothing to check here
need=()
for p in g++ make python3 pkg-config libssl-dev libsasl2-dev libzstd-dev liblz4-dev libsnappy-dev zlib1g-dev maven; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "strait: missing Debian packages: ${need[*]} — run: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "strait: installing Debian packages: ${need[*]}" >&2
log=$(mktemp)
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >"$log" 2>&1; then
  tail -20 "$log" >&2
  echo "strait: could not install ${need[*]}; install them and run npm install again" >&2
  exit 1
fi
