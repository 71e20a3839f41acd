#!/usr/bin/env bash
# core/run.sh: unit tests of src/core. Compiles src/core/*.c once with the
# project's strict flags, links each test/core/test_*.c into test/core/bin/,
# runs it (TAP output), then does the same again with ASan + UBSan. A test
# that does not build or dies without a "not ok" line adds a "not ok" line.
set -euo pipefail
cd "$(dirname "$0")/../.."
shopt -s nullglob

flags=(-std=gnu99 -Wall -Wmissing-prototypes -Wpointer-arith
	-Wdeclaration-after-statement -Werror=vla -Wextra -Werror
	-Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers
	-O2 -g -Isrc/core -Itest/core)
# shellcheck disable=SC2054  # the commas are part of -fsanitize=
san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
tests=(test/core/test_*.c)
[ ${#tests[@]} -gt 0 ] || { echo "# core: no tests"; exit 0; }
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# build <variant> <extra flags...>: objects of src/core, then one binary per test.
build_and_run() {
	local variant=$1 dir=test/core/bin/$1 objs=() src obj t name out rc
	shift
	mkdir -p "$dir/obj"
	for src in src/core/*.c; do
		obj=$dir/obj/$(basename "$src" .c).o
		# As the Makefile builds it: vecmath.c fuses only its explicit fmas.
		contract=()
		[ "$(basename "$src")" = vecmath.c ] && contract=(-ffp-contract=off)
		if ! gcc "${flags[@]}" "${contract[@]}" "$@" -c "$src" -o "$obj"; then
			echo "not ok - $variant: $src does not compile"
			return 0
		fi
		objs+=("$obj")
	done
	for t in "${tests[@]}"; do
		name=$(basename "$t" .c)
		echo "# $variant $name"
		if ! gcc "${flags[@]}" "$@" "$t" "${objs[@]}" -lm -lpthread -lcjson -o "$dir/$name"; then
			echo "not ok - $variant $name does not build"
			continue
		fi
		rc=0
		out=$("$dir/$name" 2>&1) || rc=$?
		echo "$out"
		if [ $rc -ne 0 ] && ! grep -q '^not ok' <<<"$out"; then
			echo "not ok - $variant $name exited with status $rc"
		fi
	done
}

build_and_run plain
build_and_run asan "${san[@]}"
