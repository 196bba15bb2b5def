#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# After `scons install PREFIX=$1`: builds and runs the consumers of tests/packaging/
# (CMake and pkg-config) against that prefix, outside the source tree, and checks the
# hardening of the installed shared library (full RELRO: GNU_RELRO and BIND_NOW) and
# that the man pages are there. .ci/run calls it; it works from any directory.
set -euo pipefail

prefix=${1:?usage: check-install.sh PREFIX}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

lib=$(readlink -f "$prefix/lib/libskproc.so")
echo "== hardening of $lib"
dyn=$(readelf -d "$lib"); segs=$(readelf -lW "$lib"); syms=$(readelf -sW --dyn-syms "$lib")
grep -E 'BIND_NOW|FLAGS_1' <<<"$dyn" || true
grep -q 'BIND_NOW' <<<"$dyn" || { echo "no BIND_NOW in $lib"; exit 1; }
grep -q 'GNU_RELRO' <<<"$segs" || { echo "no GNU_RELRO segment in $lib"; exit 1; }
grep -q '__stack_chk_fail' <<<"$syms" || { echo "no stack protector in $lib"; exit 1; }
grep -qE '__[a-z0-9_]+_chk@' <<<"$syms" || { echo "no _FORTIFY_SOURCE calls in $lib"; exit 1; }
echo "GNU_RELRO, BIND_NOW, stack protector and fortified calls: present"

echo "== man pages"
test -f "$prefix/share/man/man3/sk_start.3"
MANPATH="$prefix/share/man" man -P cat sk_pool_imap | sed -n 1,4p

echo "== CMake consumer"
cmake -S "$here/cmake" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake"
LD_LIBRARY_PATH="$prefix/lib" "$work/cmake/consumer_shared"
"$work/cmake/consumer_static"
ldd "$work/cmake/consumer_shared" | grep libskproc

echo "== pkg-config consumer"
cp "$here/pkgconfig/Makefile" "$here/cmake/consumer.c" "$work/"  # the same program as the CMake consumer
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --print-requires-private skproc
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" make -C "$work"
LD_LIBRARY_PATH="$prefix/lib" "$work/consumer_shared"
"$work/consumer_static"
echo "== installed skproc works from CMake and pkg-config"
