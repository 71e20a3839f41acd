#!/usr/bin/env bash
# fuzz/run.sh: builds every test/fuzz/fuzz_<name>.c as a libFuzzer target
# (clang, ASan + UBSan) with src/core and runs each for $FUZZ_SECONDS (60 in
# CI, 20 otherwise). The corpus starts from test/fuzz/corpus_<name>/ if it
# exists and from the files test/fuzz/seed_<name>.c writes, all under
# build/fuzz/. Prints "PASS fuzz <name>" or "FAIL fuzz <name>" per target.
set -euo pipefail
cd "$(dirname "$0")/../.."
shopt -s nullglob

seconds=${FUZZ_SECONDS:-$([ -n "${CI:-}" ] && echo 60 || echo 20)}
flags=(-std=gnu99 -g -O1 -Isrc/core -Wall -Werror -Wno-unused-parameter)
core=(src/core/*.c)
out=build/fuzz
mkdir -p test/fuzz/bin "$out"

for src in test/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	name=${name#fuzz_}
	bin=test/fuzz/bin/fuzz_$name
	corpus=$out/corpus_$name
	log=$out/$name.log
	echo "# fuzz $name: building"
	if ! clang "${flags[@]}" -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined "$src" "${core[@]}" -lm -lpthread -lcjson -o "$bin"; then
		echo "FAIL fuzz $name (does not build)"
		continue
	fi
	seeds=()
	[ -d "test/fuzz/corpus_$name" ] && seeds+=("test/fuzz/corpus_$name")
	if [ -f "test/fuzz/seed_$name.c" ]; then
		rm -rf "$out/seeds_$name" && mkdir -p "$out/seeds_$name"
		if ! clang "${flags[@]}" "test/fuzz/seed_$name.c" "${core[@]}" -lm -lpthread -lcjson \
			-o "test/fuzz/bin/seed_$name" || ! "test/fuzz/bin/seed_$name" "$out/seeds_$name"; then
			echo "FAIL fuzz $name (seed generator failed)"
			continue
		fi
		seeds+=("$out/seeds_$name")
	fi
	mkdir -p "$corpus"
	echo "# fuzz $name: running ${seconds}s, seeds: ${seeds[*]:-none}"
	if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$out/crash_$name-" \
		"$corpus" "${seeds[@]}" >"$log" 2>&1; then
		echo "PASS fuzz $name ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs)"
	else
		tail -n 60 "$log"
		echo "FAIL fuzz $name (crash input in $out/crash_$name-*, log $log)"
	fi
done
