#!/bin/sh
# SPDX-License-Identifier: MIT
# Hostile and malformed NBD traffic against `xmem blk serve`: raw protocol
# messages (nbd_raw.py, standard Python only) and libnbd with its own checks
# off (nbd_nbdsh.py under nbdsh). Each gets an error reply or a closed
# connection, the server keeps serving, and the data stays where it was.
. "$(dirname "$0")/lib.sh"
need timeout
D="$(dirname "$0")"

make_btt rw.img 24M 4096
make_btt ro.img 20M 512
truncate -s 24M "$T/ro2.img"
serve --raw "$T/rw.img"
SIZE=$("$XMEM" blk info --raw "$T/rw.img" --json | sed 's/.*"size":\([0-9]*\).*/\1/')
PY=$(command -v python3) || skip "python3 is not installed"
timeout 120 "$PY" "$D/nbd_raw.py" "$SOCK" rw.img "$SIZE" ||
	fail "raw protocol checks"
kill -0 "$SERVER_PID" || fail "server died"
# A client that floods reads and never reads the replies must not hold up
# SIGTERM (stop_server allows 10 s).
timeout 30 "$PY" - "$SOCK" <<'PYEOF' &
import socket, struct, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.recv(18)
s.sendall(struct.pack(">I", 3))
s.sendall(struct.pack(">QII", 0x49484156454F5054, 7, 12) +
          struct.pack(">I", 6) + b"rw.img" + struct.pack(">H", 0))
s.settimeout(2)
try:
    for i in range(100000):
        s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, i, 0, 1 << 20))
except OSError:
    pass
time.sleep(25)
PYEOF
FLOOD=$!
sleep 3
stop_server
kill $FLOOD 2>/dev/null
wait $FLOOD 2>/dev/null

# libnbd's Python binding comes with the system's python3.
if PATH=/usr/bin:$PATH python3 -c "import nbd" 2>/dev/null &&
	command -v nbdsh >/dev/null; then
	"$XMEM" blk serve --raw "$T/ro.img" --read-only --unix "$T/ro.sock" \
		--port 0 >"$T/serve-ro.log" 2>&1 &
	RO_PID=$!
	serve --raw "$T/rw.img"
	for _ in $(seq 100); do
		grep -q '^serving' "$T/serve-ro.log" && break
		sleep 0.1
	done
	NBDSH_URI_RO="nbd+unix:///ro.img?socket=$T/ro.sock" PATH=/usr/bin:$PATH \
		timeout 120 nbdsh -u "$(uri rw.img)" \
		-c "exec(open('$D/nbd_nbdsh.py').read())"
	RC=$?
	kill -TERM $RO_PID
	wait $RO_PID || fail "read-only server exit"
	[ $RC = 0 ] || fail "nbdsh checks"
	stop_server
else
	echo "nbdsh part skipped: python3-libnbd is not installed"
fi
"$XMEM" blk check --raw "$T/rw.img" >/dev/null || fail "check after abuse"
echo PASS
