#!/usr/bin/env bash
# tests/scaleout.sh — scale-out smoke test: two `ironlm serve` instances behind nginx, configured
# with deploy/nginx-ironlm.conf (its upstream servers and listen port swapped for test ones).
# Runs `ironlm loadtest` through nginx (must have zero errors), checks on /metrics that both
# instances served completions, then stops nginx and SIGTERMs the instances (each must exit 0).
# Exit 0 pass, 1 fail, 77 skip (no nginx). Run from the repository root; tests/test_scaleout.c
# runs it. Env: IRONLM_BIN (default ./ironlm, may hold a launcher prefix), IRONLM_NGINX (the
# nginx binary; default from PATH or /usr/sbin/nginx; IRONLM_NGINX=/nonexistent forces a skip).
set -u
BIN=${IRONLM_BIN:-./ironlm}
NGINX=${IRONLM_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
MODEL=models/pycoder-q8_0.gguf DRAFT=models/pycoder-mtp-q8_0.gguf CONF=deploy/nginx-ironlm.conf
if [ ! -x "$NGINX" ]; then echo "scaleout: SKIP: nginx not found ($NGINX)"; exit 77; fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ironlm-scaleout-XXXXXX") || exit 1
chmod 755 "$TMP"   # nginx workers run as nobody when started as root
SPID=() NGPID=""
cleanup() {
    local p
    for p in $NGPID "${SPID[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "scaleout: FAIL: interrupted"; exit 1' INT TERM
fail() {
    echo "scaleout: FAIL: $*"
    for f in "$TMP"/*.log "$TMP"/loadtest.out; do [ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done
    exit 1
}
for f in "$MODEL" "$DRAFT" "$CONF"; do [ -f "$f" ] || fail "missing $f (run from the repository root)"; done

# GET http://127.0.0.1:PORT/PATH with bash's /dev/tcp (no curl needed); prints the response.
http_get() {
    timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$2" >&3; cat <&3' _ "$1" "$2" 2>/dev/null
}
is_200() { http_get "$1" "$2" | head -n 1 | grep -q '^HTTP/1\.[01] 200'; }
# Waits up to $1 seconds for process $2 to exit; returns its exit status (124: still running).
wait_exit() {
    local i
    for ((i = 0; i < $1 * 10; i++)); do kill -0 "$2" 2>/dev/null || { wait "$2"; return; }; sleep 0.1; done
    return 124
}

# --- two instances on free ports (--port 0; the port is read from the "listening on" line)
PORT=()
for i in 0 1; do
    $BIN serve -m "$MODEL" --draft "$DRAFT" -np 2 -t 1 --port 0 2>"$TMP/serve$i.log" &
    SPID[i]=$!
done
for i in 0 1; do
    for ((k = 0; k < 100; k++)); do
        PORT[i]=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$TMP/serve$i.log")
        [ -n "${PORT[i]}" ] && break
        kill -0 "${SPID[i]}" 2>/dev/null || fail "instance $i exited at start"
        sleep 0.1
    done
    [ -n "${PORT[i]}" ] || fail "instance $i printed no port in 10 s"
    for ((k = 0; k < 200; k++)); do is_200 "${PORT[i]}" /health && break; sleep 0.1; done
    is_200 "${PORT[i]}" /health || fail "instance $i (port ${PORT[i]}): /health not 200 after 20 s"
done
echo "scaleout: instances ready on ports ${PORT[0]} ${PORT[1]}"

# --- nginx on a free port with the deploy config; all its files in $TMP
start_nginx() {
    awk -v a="${PORT[0]}" -v b="${PORT[1]}" -v lp="$1" '
        /^[ \t]*server 127\.0\.0\.1:[0-9]+/ { if (!s++) printf "    server 127.0.0.1:%s max_fails=3 fail_timeout=10s;\n    server 127.0.0.1:%s max_fails=3 fail_timeout=10s;\n", a, b; next }
        /^[ \t]*listen / { l++; print "    listen 127.0.0.1:" lp ";"; next }
        { print }
        END { if (!s || l != 1) exit 1 }' "$CONF" >"$TMP/ironlm.conf" || fail "$CONF: no upstream server lines or not one listen line"
    cat >"$TMP/nginx.conf" <<NGX
daemon off;
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 256; }
http {
    access_log $TMP/nginx-access.log;
    client_body_temp_path $TMP/client_body;
    proxy_temp_path $TMP/proxy;
    fastcgi_temp_path $TMP/fastcgi;
    uwsgi_temp_path $TMP/uwsgi;
    scgi_temp_path $TMP/scgi;
    include $TMP/ironlm.conf;
}
NGX
    "$NGINX" -p "$TMP/" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" &
    NGPID=$!
    for ((k = 0; k < 50; k++)); do
        is_200 "$1" /health && return 0
        kill -0 "$NGPID" 2>/dev/null || { wait "$NGPID"; NGPID=""; return 1; }
        sleep 0.1
    done
    fail "nginx on port $1: /health not 200 after 5 s"
}
NPORT=""
for try in 1 2 3 4 5; do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue   # taken
    start_nginx "$p" && { NPORT=$p; break; }
done
[ -n "$NPORT" ] || fail "nginx did not start (5 tries)"
echo "scaleout: nginx ($("$NGINX" -v 2>&1 | sed 's/.*: //')) on port $NPORT"

# --- load through nginx: zero errors
timeout 40 $BIN loadtest --url "http://127.0.0.1:$NPORT" --concurrency 4 --requests 40 --max-tokens 8 \
    >"$TMP/loadtest.out" 2>&1
rc=$?
grep '^|  *4 |' "$TMP/loadtest.out"
[ $rc -eq 0 ] || fail "loadtest through nginx exited $rc"

# --- both instances served completions
for i in 0 1; do
    m=$(http_get "${PORT[i]}" /metrics)
    ok=$(printf '%s\n' "$m" | sed -n 's/^ironlm_requests_total{status="2xx"} \([0-9]*\).*/\1/p')
    tok=$(printf '%s\n' "$m" | sed -n 's/^ironlm_tokens_predicted_total \([0-9]*\).*/\1/p')
    echo "scaleout: instance $i (port ${PORT[i]}): 2xx ${ok:-?}, tokens predicted ${tok:-?}"
    [ "${ok:-0}" -gt 0 ] && [ "${tok:-0}" -gt 0 ] || fail "instance $i served no completions"
done

# --- graceful stop: nginx (QUIT), then SIGTERM each instance -> exit 0
kill -QUIT "$NGPID"
wait_exit 10 "$NGPID" >/dev/null; rc=$?
NGPID=""
[ $rc -eq 0 ] || fail "nginx stop: exit $rc"
for i in 0 1; do kill -TERM "${SPID[i]}"; done
for i in 0 1; do
    wait_exit 15 "${SPID[i]}"; rc=$?
    [ $rc -eq 124 ] || SPID[i]=""
    [ $rc -eq 0 ] || fail "instance $i: exit $rc after SIGTERM"
done
SPID=()
echo "scaleout: ok"
