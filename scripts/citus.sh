#!/usr/bin/env bash
# citus.sh: builds Citus from the vendored source tarball
# (../shared/vendor/citus/citus-X.Y.Z.tar.gz, or $CITUS_TARBALL) and installs
# it into the PostgreSQL that pg_config (or $PG_CONFIG) names. Cached: when
# that Citus version is already installed there it does nothing. The build
# happens in build/citus (ignored by git); no Citus source enters the repo.
#   scripts/citus.sh            build and install when missing
#   scripts/citus.sh --force    rebuild and reinstall
#   scripts/citus.sh --check    exit 0 when installed at the version, 1 if not
# Installs the extension only (install-extension: no C headers, which would
# go to the shared server include directory even in a sandbox).
# No LLVM bitcode (with_llvm=no): JIT inlining of Citus is not needed and
# the bitcode doubles the build time.
# Debian packages it needs: liblz4-dev libzstd-dev libkrb5-dev (installed
# here when missing; PostgreSQL 15's libpq-be.h includes gssapi/gssapi.h).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

pg_config=${PG_CONFIG:-pg_config}
tarball=${CITUS_TARBALL:-}
if [ -z "$tarball" ]; then
	for d in "$root/../shared/vendor/citus" /work/shared/vendor/citus; do
		tarball=$(ls "$d"/citus-*.tar.gz 2>/dev/null | sort -V | tail -n 1 || true)
		[ -n "$tarball" ] && break
	done
fi
[ -n "$tarball" ] && [ -f "$tarball" ] || {
	echo "citus: no citus-*.tar.gz found (set CITUS_TARBALL)" >&2
	exit 2
}
version=$(basename "$tarball" .tar.gz)
version=${version#citus-}
pkglibdir=$("$pg_config" --pkglibdir)

# True when citus.so in pkglibdir is this version: the library embeds
# "Citus X.Y.Z on <platform>" (the citus_version() string).
installed() {
	[ -f "$pkglibdir/citus.so" ] &&
		grep -aq "Citus $version on" "$pkglibdir/citus.so"
}

# Installs the Debian packages the build needs when one is missing.
ensure_packages() {
	local p status missing=()
	for p in liblz4-dev libzstd-dev libkrb5-dev; do
		status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		[ "$status" = "install ok installed" ] || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "citus: installing ${missing[*]}"
	local sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -q
	"${sudo[@]}" apt-get install -y -q "${missing[@]}"
}

# Unpacks the tarball into build/citus and applies the PostgreSQL 15.20 fix:
# 15.20 declares have_createdb_privilege() in commands/dbcommands.h, and
# Citus' pg_version_compat.h defines a static inline of the same name for
# PG < 16. Including the header first and renaming the compat function
# avoids "static declaration follows non-static declaration".
unpack() {
	local src=$1 compat
	rm -rf "$src"
	mkdir -p "$(dirname "$src")"
	tar -xzf "$tarball" -C "$(dirname "$src")"
	compat=$src/src/include/pg_version_compat.h
	if ! grep -q citus_compat_have_createdb_privilege "$compat"; then
		awk '
			!done && /^static inline bool$/ { held = $0; next }
			held != "" {
				if ($0 == "have_createdb_privilege(void)") {
					print "#include \"commands/dbcommands.h\""
					print "#define have_createdb_privilege citus_compat_have_createdb_privilege"
					done = 1
				}
				print held; held = ""
			}
			{ print }
		' "$compat" >"$compat.new" && mv "$compat.new" "$compat"
	fi
}

case "${1:-}" in
	--check) installed; exit ;;
	--force) ;;
	"") if installed; then
			echo "citus: $version already installed in $pkglibdir"
			exit 0
		fi ;;
	*) echo "usage: $0 [--force|--check]" >&2; exit 2 ;;
esac

ensure_packages
src=$root/build/citus/citus-$version
start=$(date +%s)
unpack "$src"
cd "$src"
echo "citus: configuring $version for $("$pg_config" --version) ($pkglibdir)"
./configure PG_CONFIG="$pg_config" --without-libcurl >"$root/build/citus/configure.log" 2>&1 ||
	{ tail -n 30 "$root/build/citus/configure.log" >&2; exit 1; }
echo "citus: building (log build/citus/make.log)"
make -j"${CITUS_JOBS:-$(nproc)}" with_llvm=no >"$root/build/citus/make.log" 2>&1 ||
	{ grep -m 20 -E 'error|Error' "$root/build/citus/make.log" >&2; exit 1; }
make install-extension with_llvm=no PG_CONFIG="$pg_config" >"$root/build/citus/install.log" 2>&1 ||
	{ tail -n 30 "$root/build/citus/install.log" >&2; exit 1; }
installed || { echo "citus: installed library does not report $version" >&2; exit 1; }
echo "citus: $version installed in $pkglibdir ($(($(date +%s) - start)) s)"
