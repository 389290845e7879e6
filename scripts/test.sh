#!/bin/sh
# Builds xmem and runs every test, as root on Debian 12:
#   - the format check (clang-format against .clang-format);
#   - the plain build's suite, which includes the kernel-device suite in a
#     qemu guest and the replay of every fuzz corpus;
#   - the same suite under ASan+UBSan;
#   - the threaded tests under TSan;
#   - the libFuzzer targets, built with clang, each run briefly.
# It ends with one line "N passed, N failed, N skipped" and exits non-zero
# if anything failed.
set -u
cd "$(dirname "$0")/.."
scripts/deps.sh test || exit 1

jobs=$(nproc)
status=0
logs=""

# Runs "meson test" in a build dir with extra arguments; remembers its log.
run_suite() {
	dir=$1
	shift
	echo "== meson test -C $dir $*"
	meson test -C "$dir" --num-processes "$jobs" --print-errorlogs "$@" ||
		status=1
	logs="$logs $dir/meson-logs/testlog.json"
}

# Configures (once) and builds a tree.
build() {
	dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || {
			cat "$dir.setup.log"
			return 1
		}
	fi
	ninja -C "$dir" -j "$jobs" >"$dir.build.log" 2>&1 || {
		tail -50 "$dir.build.log"
		return 1
	}
}

fmt_ok=1
scripts/check-format.sh || fmt_ok=0

if build build; then
	run_suite build
else
	status=1
fi

if build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dheap_shadow=true \
	-Dbuildtype=debug; then
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	ASAN_OPTIONS=detect_leaks=1 \
		run_suite build-asan --no-suite kernel
else
	status=1
fi

if build build-tsan -Db_sanitize=thread -Db_lundef=false; then
	TSAN_OPTIONS=halt_on_error=1 run_suite build-tsan --no-suite kernel \
		--no-suite crash --no-suite cli --no-suite fuzz
else
	status=1
fi

if CC=clang build build-fuzz -Dfuzz=true -Db_lundef=false; then
	run_suite build-fuzz --suite fuzzrun
else
	status=1
fi

python3 scripts/count-results.py "$fmt_ok" $logs || status=1
exit $status
