#!/bin/sh
# Installs what cvopt needs to build, test and demo on Debian 12.
# Only calls apt when something is missing, so repeated runs are quick.
set -eu
pkgs="meson ninja-build pkg-config gcc clang libclang-rt-14-dev
 ocl-icd-opencl-dev opencl-c-headers pocl-opencl-icd clinfo
 libsystemd-dev libcmocka-dev libv4l-dev libturbojpeg0-dev libjansson-dev libinih-dev libstb-dev
 libprotobuf-c-dev protobuf-c-compiler libonnx-dev libonnx-testdata dataset-fashion-mnist
 zlib1g-dev scdoc tmux python3"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
