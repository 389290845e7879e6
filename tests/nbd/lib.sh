# SPDX-License-Identifier: MIT
# lib.sh - shared by the NBD end-to-end tests: a scratch directory, an
# `xmem blk serve` started in the background on a Unix socket (and TCP on
# loopback with a kernel-chosen port), and cleanup that always stops it.
# Every wait is bounded by a count.

set -u
XMEM="${XMEM_TEST_BUILD:-build}/tools/xmem/xmem"
T="$(mktemp -d "${XMEM_TEST_DIR:-/dev/shm}/xmem-nbd.XXXXXX")"
SOCK="$T/nbd.sock"
SERVER_PID=
PORT=

cleanup() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null
		for _ in $(seq 50); do
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$SERVER_PID" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	[ -f "$T/serve.log" ] && sed 's/^/  server: /' "$T/serve.log" >&2
	exit 1
}

skip() {
	echo "SKIP: $*"
	exit 77
}

need() {
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 ||
			skip "$tool is not installed (Debian: qemu-utils, libnbd-bin, python3-libnbd)"
	done
}

# make_btt NAME SIZE [SECTOR]: a raw namespace image with a fresh BTT.
make_btt() {
	truncate -s "$2" "$T/$1" || fail "truncate $1"
	"$XMEM" blk format --raw "$T/$1" -s "${3:-4096}" >/dev/null ||
		fail "xmem blk format $1"
}

# serve ARGS...: starts the server on $SOCK and TCP port 0; waits until
# it is ready (at most 10 s) and sets PORT.
serve() {
	"$XMEM" blk serve "$@" --unix "$SOCK" --port 0 >"$T/serve.log" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 100); do
		grep -q '^serving' "$T/serve.log" 2>/dev/null && break
		kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited"
		sleep 0.1
	done
	grep -q '^serving' "$T/serve.log" || fail "server not ready in 10 s"
	PORT=$(sed -n 's/^listening on tcp [^:]*:\([0-9]*\)$/\1/p' "$T/serve.log")
}

# stop_server: SIGTERM, and the server must exit 0 within 10 s.
stop_server() {
	kill -TERM "$SERVER_PID" || fail "server gone before SIGTERM"
	for _ in $(seq 100); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$SERVER_PID" 2>/dev/null && fail "server ignores SIGTERM"
	wait "$SERVER_PID" || fail "server exited with $?"
	SERVER_PID=
}

uri() { echo "nbd+unix:///$1?socket=$SOCK"; }
