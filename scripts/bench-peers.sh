#!/usr/bin/env bash
# Benchmarks the harness's load engine (`autoscale-harness bench`) against
# nginx on loopback, and next to wrk, hey and oha on the same target:
#   (a) 1000, 5000 and 20000 req/s for 30 s each: every full second within
#       ±1 %, no drops, no errors, and the harness's completed count within
#       ±0.5 % of the lines nginx wrote to its access log during the run;
#   (b) the highest rate the engine holds within ±1 % (step up, then bisect,
#       short runs after a 1 s warm-up, as wrk connects before it counts) on
#       64 connections like wrk (`--connections 64`, in-flight cap 10000 so a
#       ~100 ms hiccup is absorbed rather than dropped; a rate missed is
#       run once more before it counts as not held), against the best of
#       two `wrk -t1 -c64 -d10s` runs' throughput (and hey's, for context),
#       with how busy nginx's worker was in each and its CPU per request;
#   (c) CPU (user+sys) per 1,000 requests at 5000 req/s against
#       `oha -q 5000 -z 30s --no-tui`, whose CPU is measured by /usr/bin/time
#       and whose request count is nginx's access log;
#   (d) peak RSS after 1 min at 5000 req/s, and after 10 min with LONG=1,
#       with its anonymous part (heap and stacks), which is what grows;
#   (e) the embedded gateway alone vs nginx as a reverse proxy: built-in pods
#       with zero service time (`autoscale-harness serve pods`, a process of
#       their own), the gateway in another (`serve gateway`; each in a
#       session of its own, as nginx's daemon is) and nginx
#       (`proxy_pass` to an upstream of the same pods, keep-alive) in front
#       of them; at GW_RATE req/s for GW_SECS s each, `bench` direct to the
#       pods, through the gateway and through nginx, in GW_ROUNDS rounds of
#       alternating order (direct, gateway, nginx; then nginx, gateway,
#       direct; ...). Prints the p50 and p99 response time each proxy adds
#       to direct in the same round, its CPU (utime+stime of its processes
#       in /proc) per 1,000 proxied requests, each the median over the
#       rounds, and gateway / nginx for each figure (goal: at most 1).
# Prints a summary table (also written to $OUT/summary.txt with every run's
# JSON beside it) and exits 1 if a check in (a) failed.
#
# Environment: PORT (18080), OUT (target/bench-peers), LONG (0), STEP_SECS (5,
# length of each run in (b)), A_SECS (30, each run in (a) and oha's run in
# (c)), RSS_SECS (60, the shorter run in (d)), NGINX_WORKERS (1: nginx on one
# core, the load tool on the other), PIN (1: with fewer nginx workers than
# CPUs, (a)-(d) bind nginx's workers to the first NGINX_WORKERS CPUs with
# worker_cpu_affinity and run every load tool on the others with taskset, so
# neither side's threads ever take the other's core; 0: the kernel places
# them), SKIP_INSTALL (0), ONLY (empty; `e`:
# only section (e)), GW_RATE (5000), GW_SECS (10), GW_ROUNDS (10), GW_PODS
# (2), GW_PATH (/get), GW_THREADS (NGINX_WORKERS: the gateway on as many
# runtime threads as nginx has workers, one being tokio's single-threaded
# scheduler; empty: on the harness's own runtime, one worker per CPU, as in
# a run). (e) uses ports PORT+100.. (pods), PORT+200 (gateway)
# and PORT+201 (nginx as proxy).
#
# Everything targets 127.0.0.1 only. Installs nginx, wrk, hey and jq with
# apt-get and oha with `cargo install oha --locked` when they are missing.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
PORT=${PORT:-18080}
OUT=${OUT:-$REPO/target/bench-peers}
LONG=${LONG:-0}
STEP_SECS=${STEP_SECS:-5}
A_SECS=${A_SECS:-30}
RSS_SECS=${RSS_SECS:-60}
NGINX_WORKERS=${NGINX_WORKERS:-1}
PIN=${PIN:-1}
URL="http://127.0.0.1:$PORT/small.txt"
ONLY=${ONLY:-}
GW_RATE=${GW_RATE:-5000}
# Many short rounds rather than two long ones: the machine drifts (one
# server's p50 moved 0.40 -> 0.55 ms between rounds a minute apart, with its
# CPU per request, while the two proxies differ by about 0.03 ms), and
# alternating 10 s runs spread a slow phase over both proxies.
GW_SECS=${GW_SECS:-10}
GW_ROUNDS=${GW_ROUNDS:-10}
GW_PODS=${GW_PODS:-2}
GW_PATH=${GW_PATH:-/get}
GW_THREADS=${GW_THREADS-$NGINX_WORKERS}
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\n== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- installs
install_tools() {
    local missing=()
    for tool in nginx wrk hey jq; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    [ -x /usr/bin/time ] || missing+=(time)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]} (apt-get)"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if ! command -v oha >/dev/null 2>&1; then
        log "installing oha (cargo install oha --locked; this takes a few minutes once)"
        cargo install oha --locked
    fi
}
[ "${SKIP_INSTALL:-0}" = 1 ] || install_tools

log "building the release binary"
cargo build --release --quiet -p autoscale-harness
HARNESS=${CARGO_TARGET_DIR:-$REPO/target}/release/autoscale-harness
[ -x "$HARNESS" ] || { echo "no binary at $HARNESS" >&2; exit 3; }

# ----------------------------------------------------------------- pinning
# Unpinned, the load tool's helper threads (and the kernel's) now and then run
# on nginx's core: at the server's limit that is a missed second for an open
# model, where a closed loop such as wrk just goes slower for a moment. Seen
# by hand (one worker, access log off, 5 s runs): unpinned, wrk made 156,000-
# 158,000 req/s and the engine held 160,000 in 1 try of 3; pinned, wrk made
# 157,000-160,000 and the engine held 165,000 in 3 of 3.
# cpus A B -> "A" or "A-B", as taskset and people read a CPU range.
cpus() { if [ "$1" = "$2" ]; then echo "$1"; else echo "$1-$2"; fi; }
NCPU=$(nproc)
AFFINITY=""
LOAD_CPUS=()
PINNED=
if [ "$PIN" = 1 ] && [ "$NGINX_WORKERS" -lt "$NCPU" ]; then
    # nginx binds each worker to one of the CPUs in the mask: as many ones
    # as workers, CPU 0 the rightmost.
    AFFINITY="worker_cpu_affinity auto $(printf '1%.0s' $(seq "$NGINX_WORKERS"));"
    LOAD_CPUS=(taskset -c "$(cpus "$NGINX_WORKERS" $((NCPU - 1)))")
    PINNED="; (a)-(d): nginx's workers on CPU $(cpus 0 $((NGINX_WORKERS - 1))), the load tools on CPU ${LOAD_CPUS[2]}"
fi
# on_load_cpus CMD... -> CMD on the load tools' CPUs.
on_load_cpus() { ${LOAD_CPUS[@]+"${LOAD_CPUS[@]}"} "$@"; }

# ------------------------------------------------------------------- nginx
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/bench-peers.XXXXXX)
chmod 755 "$WORK"
printf 'ok\n' > "$WORK/small.txt"
chmod 644 "$WORK/small.txt"
ACCESS_LOG=$WORK/access.log
NGINX_CONF=$WORK/nginx.conf
# The http settings both nginx configurations share: long keep-alive, temp
# files in $WORK.
NGINX_HTTP_COMMON="    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path $WORK/body;
    proxy_temp_path $WORK/proxy;
    fastcgi_temp_path $WORK/fastcgi;
    uwsgi_temp_path $WORK/uwsgi;
    scgi_temp_path $WORK/scgi;"
cat > "$NGINX_CONF" <<EOF
worker_processes $NGINX_WORKERS;
$AFFINITY
worker_rlimit_nofile 65536;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 20000; }
http {
    # Buffered, flushed every second: one write per request would make nginx
    # pay for the bookkeeping the benchmark relies on.
    access_log $ACCESS_LOG combined buffer=256k flush=1s;
$NGINX_HTTP_COMMON
    server {
        listen 127.0.0.1:$PORT;
        location / { root $WORK; }
    }
}
EOF

# Section (e)'s processes, stopped with the rest.
GW_PIDS=()
stop_nginx() {
    for pid in ${GW_PIDS[@]+"${GW_PIDS[@]}"}; do kill "$pid" 2>/dev/null || true; done
    for pidfile in "$WORK/nginx.pid" "$WORK/proxy.pid"; do
        if [ -f "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
            for _ in $(seq 50); do [ -f "$pidfile" ] || break; sleep 0.1; done
        fi
    done
    rm -rf "$WORK"
}
trap stop_nginx EXIT

ulimit -n 65536 2>/dev/null || true
nginx -c "$NGINX_CONF" -e "$WORK/error.log"
for _ in $(seq 50); do curl -sf "$URL" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$URL" >/dev/null || { echo "nginx did not come up on $URL" >&2; cat "$WORK/error.log" >&2; exit 3; }
sleep 1.5 # the probe's log line is flushed before counting starts

log_lines() { wc -l < "$ACCESS_LOG"; }
# Lines nginx logged since $1, after its 1 s buffer flush.
lines_since() { sleep 2; echo $(( $(log_lines) - $1 )); }

# bench NAME ARGS... -> runs the harness, JSON to $OUT/NAME.json
bench() {
    local name=$1; shift
    on_load_cpus "$HARNESS" bench --url "$URL" --json "$@" > "$OUT/$name.json"
}
j() { jq -r "$2" "$OUT/$1.json"; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (a - b) / b * 100 }'; }
abs_le() { awk -v x="$1" -v m="$2" 'BEGIN { exit !((x < 0 ? -x : x) <= m) }'; }
# held NAME -> success when the run held its rate: max per-second error
# within 1 %, nothing dropped, no errors.
held() {
    [ "$(j "$1" '.requests.dropped')" = 0 ] &&
        [ "$(j "$1" '.requests.errors')" = 0 ] &&
        abs_le "$(j "$1" '.rate.per_second_error.max_abs_pct // 999')" 1
}

SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
row() { printf '%-44s %s\n' "$1" "$2" | tee -a "$SUMMARY"; }
FAILED=0
# Other work on the machine shows up in every figure; say how busy it was.
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
row "machine" "$NCPU CPUs, load average $(loadavg) at start; nginx workers: $NGINX_WORKERS$PINNED"

# ------------------------------------- (e) gateway alone vs nginx as proxy
# CPU time (user + sys, seconds) the processes PIDS... have used so far.
cpu_s() {
    local ticks=0 pid t
    for pid in "$@"; do
        # Fields after "pid (comm) ": utime and stime are the 12th and 13th.
        t=$(sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')
        ticks=$(( ticks + t ))
    done
    awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", t / hz }'
}
# wait_up URL LOG: until URL answers; exits 3 showing LOG if not within 5 s.
wait_up() {
    for _ in $(seq 50); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "nothing answers on $1" >&2; cat "$2" >&2; exit 3
}
# ratio A B -> A / B with 2 decimals; n/a unless B > 0.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
# median X... -> their median (the mean of the middle two when even), 3
# decimals (5 with DP=5); range X... -> "min..max" with as many.
median() {
    printf '%s\n' "$@" | sort -g | awk -v dp="${DP:-3}" '{ v[NR] = $1 }
        END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.*f", dp, m }'
}
range() { printf '%s\n' "$@" | sort -g | awk -v dp="${DP:-3}" 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.*f..%.*f", dp, lo, dp, hi }'; }

section_e() {
    log "(e) gateway alone vs nginx reverse proxy: $GW_RATE req/s for $GW_SECS s each, $GW_ROUNDS round(s)"
    local pod_port=$((PORT + 100)) gw_port=$((PORT + 200)) ngx_port=$((PORT + 201))
    local upstreams=() servers="" i
    for i in $(seq 0 $((GW_PODS - 1))); do
        upstreams+=(--upstream "127.0.0.1:$((pod_port + i))")
        servers+="        server 127.0.0.1:$((pod_port + i));"$'\n'
    done
    # Each server in a session of its own, as nginx's daemon is: with the
    # kernel's autogroup scheduling (sched_autogroup_enabled=1) a session is
    # a scheduling group, and a gateway sharing the script's with `bench`
    # waited about twice as long as nginx to run once woken (30 against
    # 17 µs per request, /proc/PID/schedstat). `setsid` execs in place: $!
    # is the server's pid.
    setsid "$HARNESS" serve pods --count "$GW_PODS" --port "$pod_port" > "$WORK/pods.log" 2>&1 < /dev/null &
    GW_PIDS+=($!)
    wait_up "http://127.0.0.1:$pod_port$GW_PATH" "$WORK/pods.log"
    local threads=()
    [ -z "$GW_THREADS" ] || threads=(--threads "$GW_THREADS")
    setsid "$HARNESS" serve gateway --port "$gw_port" "${upstreams[@]}" ${threads[@]+"${threads[@]}"} > "$WORK/gateway.log" 2>&1 < /dev/null &
    local gw_pid=$!
    GW_PIDS+=("$gw_pid")
    wait_up "http://127.0.0.1:$gw_port$GW_PATH" "$WORK/gateway.log"
    # The gateway's work: HTTP/1.1 keep-alive to the pods, the client's Host
    # kept, X-Forwarded-For and -Proto added; no access log.
    cat > "$WORK/proxy.conf" <<NGINX
worker_processes $NGINX_WORKERS;
worker_rlimit_nofile 65536;
pid $WORK/proxy.pid;
error_log $WORK/proxy-error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
$NGINX_HTTP_COMMON
    upstream pods {
$servers        keepalive 64;
        keepalive_requests 100000000;
    }
    server {
        listen 127.0.0.1:$ngx_port;
        location / {
            proxy_pass http://pods;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
NGINX
    nginx -c "$WORK/proxy.conf" -e "$WORK/proxy-error.log"
    wait_up "http://127.0.0.1:$ngx_port$GW_PATH" "$WORK/proxy-error.log"
    local master ngx_pids
    master=$(cat "$WORK/proxy.pid")
    ngx_pids="$master $(ps -o pid= --ppid "$master" | tr '\n' ' ')"

    # Each run: bench at the fixed rate after a 1 s warm-up (not in its
    # latency figures), the proxy's CPU read around it. The warm-up's
    # requests went through the proxy too: they count in its CPU per request.
    local -A port=([direct]=$pod_port [gateway]=$gw_port [nginx]=$ngx_port)
    local -A pids=([direct]="" [gateway]="$gw_pid" [nginx]="$ngx_pids")
    local -A p50=() p99=() cpu1k=()
    local round order who name before after n
    for round in $(seq 1 "$GW_ROUNDS"); do
        order="direct gateway nginx"
        [ $((round % 2)) = 0 ] && order="nginx gateway direct"
        for who in $order; do
            name="e-$who-$round"
            # shellcheck disable=SC2086 # a list of pids
            before=$(if [ -n "${pids[$who]}" ]; then cpu_s ${pids[$who]}; else echo 0; fi)
            "$HARNESS" bench --url "http://127.0.0.1:${port[$who]}$GW_PATH" --json \
                --rate "$GW_RATE" --duration "${GW_SECS}s" --warmup 1s > "$OUT/$name.json"
            # shellcheck disable=SC2086
            after=$(if [ -n "${pids[$who]}" ]; then cpu_s ${pids[$who]}; else echo 0; fi)
            n=$(( $(j "$name" '.requests.completed') + GW_RATE ))
            p50[$who-$round]=$(j "$name" '.response_time_ms.p50')
            p99[$who-$round]=$(j "$name" '.response_time_ms.p99')
            cpu1k[$who-$round]=$(awk -v a="$before" -v b="$after" -v n="$n" 'BEGIN { printf "%.5f", (b - a) / n * 1000 }')
            held "$name" || echo "  $name did not hold $GW_RATE req/s (dropped $(j "$name" '.requests.dropped'), errors $(j "$name" '.requests.errors'))" >&2
            echo "  round $round $who: p50 ${p50[$who-$round]} ms, p99 ${p99[$who-$round]} ms, CPU ${cpu1k[$who-$round]} s per 1k, load $(loadavg)" >&2
        done
    done

    # Per proxy, the median over the rounds of (proxied - direct in that
    # round), and of its CPU per 1k.
    local -A add50=() add99=() cpu=()
    local what r d50=() d99=() a50 a99 c
    for r in $(seq 1 "$GW_ROUNDS"); do d50+=("${p50[direct-$r]}"); d99+=("${p99[direct-$r]}"); done
    local gw_threads="$GW_THREADS"
    [ -n "$gw_threads" ] || gw_threads="$(nproc) (the harness's runtime, one per CPU)"
    row "(e) gateway worker threads" "$gw_threads; nginx workers: $NGINX_WORKERS"
    row "(e) direct to $GW_PODS pods @$GW_RATE/s" "p50 $(median "${d50[@]}") ms, p99 $(median "${d99[@]}") ms (GET $GW_PATH, zero service time; medians of $GW_ROUNDS run(s) of $GW_SECS s)"
    for what in gateway nginx; do
        a50=() a99=() c=()
        for r in $(seq 1 "$GW_ROUNDS"); do
            a50+=("$(awk -v a="${p50[$what-$r]}" -v d="${p50[direct-$r]}" 'BEGIN { print a - d }')")
            a99+=("$(awk -v a="${p99[$what-$r]}" -v d="${p99[direct-$r]}" 'BEGIN { print a - d }')")
            c+=("${cpu1k[$what-$r]}")
        done
        add50[$what]=$(median "${a50[@]}")
        add99[$what]=$(median "${a99[@]}")
        cpu[$what]=$(DP=5 median "${c[@]}")
        row "(e) $what: added p50, p99; CPU per 1k" "${add50[$what]} ms, ${add99[$what]} ms; ${cpu[$what]} s (medians; over the rounds $(range "${a50[@]}") ms, $(range "${a99[@]}") ms; $(DP=5 range "${c[@]}") s)"
    done
    row "(e) gateway / nginx: added p50" "$(ratio "${add50[gateway]}" "${add50[nginx]}")"
    row "(e) gateway / nginx: added p99" "$(ratio "${add99[gateway]}" "${add99[nginx]}")"
    row "(e) gateway / nginx: CPU per 1k" "$(ratio "${cpu[gateway]}" "${cpu[nginx]}")"
}

if [ "$ONLY" = e ]; then
    section_e
    row "machine" "load average $(loadavg) at the end"
    log "summary (also in $SUMMARY)"
    cat "$SUMMARY"
    exit 0
fi

# ------------------------------------------------------ (a) rates held, log
log "(a) 1000, 5000, 20000 req/s for $A_SECS s each"
for rate in 1000 5000 20000; do
    before=$(log_lines)
    bench "rate-$rate" --rate "$rate" --duration "${A_SECS}s"
    served=$(lines_since "$before")
    completed=$(j "rate-$rate" '.requests.completed')
    agree=$(pct "$completed" "$served")
    verdict=PASS
    held "rate-$rate" && abs_le "$agree" 0.5 || { verdict=FAIL; FAILED=1; }
    # Which seconds missed, so a failure says whether it was the cold start
    # (the pool opening its connections in second 1) or the steady state.
    missed=$(j "rate-$rate" '[.per_second[] | select(.dropped > 0 or (.error_pct // 0 | fabs) > 1) | .second] | join(",")')
    row "(a) $rate req/s x $A_SECS s" \
        "$verdict${missed:+ (seconds missed: $missed)}: achieved $(j "rate-$rate" '.rate.achieved_per_s | floor') req/s, per-second error max $(j "rate-$rate" '.rate.per_second_error.max_abs_pct * 1000 | round / 1000') % mean $(j "rate-$rate" '.rate.per_second_error.mean_abs_pct * 1000 | round / 1000') %, dropped $(j "rate-$rate" '.requests.dropped'), late $(j "rate-$rate" '.requests.late'), errors $(j "rate-$rate" '.requests.errors'); completed $completed vs nginx log $served ($agree %); p99 response $(j "rate-$rate" '.response_time_ms.p99') ms"
done

# ------------------------------------------------- (b) highest held vs wrk
log "(b) highest rate held within ±1 % ($STEP_SECS s runs)"
# The server's side of each run in (b): how busy nginx's workers were over
# it (utime+stime over wall time, in % of one core) and their CPU per
# request in nginx's log. wrk's closed loop runs at whatever rate nginx
# manages; an open-loop rate at that limit cannot be held within 1 % a
# second (the server's queue then drifts with every slow moment), so these
# say whether a step missed because of the engine or of the server.
NGINX_WORKERS_PIDS=$(pgrep -P "$(cat "$WORK/nginx.pid")" | tr '\n' ' ' || true)
# server_side NAME CMD... -> runs CMD; "busy_pct us_per_request" to $OUT/NAME.nginx
server_side() {
    local name=$1 c0 l0 t0 c1 t1 n rc=0
    shift
    # shellcheck disable=SC2086 # a list of pids
    c0=$(cpu_s $NGINX_WORKERS_PIDS)
    l0=$(log_lines)
    t0=$(date +%s.%N)
    "$@" || rc=$?
    t1=$(date +%s.%N)
    # shellcheck disable=SC2086
    c1=$(cpu_s $NGINX_WORKERS_PIDS)
    n=$(lines_since "$l0")
    awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v n="$n" 'BEGIN {
        printf "%.0f %.2f\n", (c1 - c0) / (t1 - t0) * 100, (n > 0 ? (c1 - c0) / n * 1e6 : 0) }' \
        > "$OUT/$name.nginx"
    return $rc
}
# nginx_side NAME -> "busy B % of a core, U µs CPU per request", or n/a.
nginx_side() {
    if [ -f "$OUT/$1.nginx" ]; then
        awk '{ printf "busy %s %% of a core, %s µs CPU per request", $1, $2 }' "$OUT/$1.nginx"
    else
        printf 'n/a'
    fi
}
# try_rate RATE -> success if held. A miss is run again before it counts:
# near saturation a 5 s step fails on one 50-100 ms episode in which the
# round trip on all 64 connections doubles (2.2 ms instead of about 1.1,
# seen in raw logs at 40,000 req/s; wrk's own p99 round trip there is
# 1.9-2.3 ms against a 1.2 ms mean, so it meets them too, but a closed loop
# only goes slower for a moment) and the backlog then takes most of a
# second to drain. Such an episode is not the rate; a second miss is. wrk gets
# the same best of two below.
RETRIED=0
try_rate() {
    local r=$1 try e
    for try in 1 2; do
        server_side "step-$r-$try" bench "step-$r-$try" --rate "$r" \
            --duration "${STEP_SECS}s" --warmup 1s --connections 64 --max-in-flight 10000
        e=$(j "step-$r-$try" '(.rate.per_second_error.max_abs_pct // 999) * 1000 | round / 1000')
        if held "step-$r-$try"; then
            echo "  $r req/s: held (max error $e %, try $try)" >&2
            return 0
        fi
        echo "  $r req/s: NOT held, try $try (max error $e %, dropped $(j "step-$r-$try" '.requests.dropped'), late $(j "step-$r-$try" '.requests.late'), errors $(j "step-$r-$try" '.requests.errors'))" >&2
        [ "$try" = 2 ] || RETRIED=$((RETRIED + 1))
    done
    return 1
}
# From the highest rate (a) held, step up by 25 % until a rate is not held,
# then bisect down to a 0.5 % bracket: wrk's figure is a measured rate, so
# the engine's must not be understated by the search's step (a 2 % bracket,
# as until 2026-12-06, could put it up to 2 % below the highest rate held).
# A miss in (a) does not cap the search (those runs are cold: no warm-up).
lo=0
hi=0
for rate in 1000 5000 20000; do
    if held "rate-$rate"; then lo=$rate; fi
done
r=$(( lo > 5000 ? lo * 5 / 4 : 6250 ))
for _ in $(seq 12); do
    if try_rate "$r"; then lo=$r; r=$(( r * 5 / 4 )); else hi=$r; break; fi
done
for _ in $(seq 8); do
    [ "$hi" -gt 0 ] && [ $(( hi - lo )) -gt $(( lo / 200 + 1 )) ] || break
    mid=$(( (lo + hi) / 2 ))
    if try_rate "$mid"; then lo=$mid; else hi=$mid; fi
done
# Best of two, as the engine's steps get a second try.
wrk_rps=0
wrk_best=wrk-1
for try in 1 2; do
    server_side "wrk-$try" on_load_cpus wrk -t1 -c64 -d10s "$URL" > "$OUT/wrk-$try.txt"
    w=$(awk '/^Requests\/sec:/ { print $2 }' "$OUT/wrk-$try.txt")
    echo "  wrk run $try: $w req/s; nginx $(nginx_side "wrk-$try")" >&2
    if awk -v a="$wrk_rps" -v b="$w" 'BEGIN { exit !(b > a) }'; then
        wrk_rps=$w
        wrk_best=wrk-$try
    fi
done
on_load_cpus hey -z 10s -c 64 "$URL" > "$OUT/hey.txt"
hey_rps=$(awk '/Requests\/sec:/ { print $2 }' "$OUT/hey.txt")
ratio=$(awk -v a="$lo" -v b="$wrk_rps" 'BEGIN { printf "%.2f", a / b }')
row "(b) highest rate held (±1 %, no drops)" "$lo req/s (lowest not held: $hi; ${STEP_SECS} s runs after 1 s warm-up, 64 connections, in-flight cap 10000; a miss counts after a second try, $RETRIED rate(s) needed one)"
row "(b) wrk -t1 -c64 -d10s throughput" "$wrk_rps req/s (best of 2; closed loop, as fast as possible)"
row "(b) hey -z 10s -c 64 throughput" "$hey_rps req/s (for context)"
row "(b) harness held / wrk" "$ratio"
# The try that held $lo, and the last try of the lowest rate not held.
held_run=none
for try in 1 2; do
    if [ -f "$OUT/step-$lo-$try.json" ] && held "step-$lo-$try"; then
        held_run=step-$lo-$try
        break
    fi
done
row "(b) nginx at the highest rate held" "$(nginx_side "$held_run")"
missed_run=step-$hi-2
[ -f "$OUT/$missed_run.nginx" ] || missed_run=step-$hi-1
row "(b) nginx at the lowest rate not held" "$(nginx_side "$missed_run")"
row "(b) nginx under wrk (its best run)" "$(nginx_side "$wrk_best")"

# ----------------------------------------------------- (c) CPU/1k vs oha
log "(c) CPU per 1,000 requests at 5000 req/s: harness vs oha"
h_cpu=$(j rate-5000 '.cpu.per_1000_requests_s')
before=$(log_lines)
on_load_cpus /usr/bin/time -f '%U %S' -o "$OUT/oha.time" oha -q 5000 -z "${A_SECS}s" --no-tui "$URL" > "$OUT/oha.txt"
oha_served=$(lines_since "$before")
read -r oha_user oha_sys < "$OUT/oha.time"
oha_cpu=$(awk -v u="$oha_user" -v s="$oha_sys" -v n="$oha_served" 'BEGIN { printf "%.5f", (u + s) / n * 1000 }')
cpu_ratio=$(awk -v a="$h_cpu" -v b="$oha_cpu" 'BEGIN { printf "%.2f", a / b }')
row "(c) harness CPU per 1k requests @5000/s" "$(printf '%.5f' "$h_cpu") s (user $(j rate-5000 '.cpu.user_s') s, sys $(j rate-5000 '.cpu.sys_s') s, $(j rate-5000 '.requests.completed') requests)"
row "(c) oha CPU per 1k requests @5000/s" "$oha_cpu s (user $oha_user s, sys $oha_sys s, $oha_served requests in nginx's log)"
row "(c) harness / oha CPU" "$cpu_ratio"

# ------------------------------------------------------------ (d) RSS
log "(d) peak RSS at 5000 req/s: 1 min$([ "$LONG" = 1 ] && echo ' and 10 min' || echo ' (LONG=1 adds 10 min)')"
bench rss-1m --rate 5000 --duration "${RSS_SECS}s"
# KiB of a run's peak RSS and of its anonymous part (heap and stacks; the
# rest is the binary's own pages, as many as the page cache lent it).
rss_kib() { echo "$(( $(j "$1" '.peak_rss_bytes') / 1024 )) KiB (anonymous $(( $(j "$1" '.peak_anon_rss_bytes // 0') / 1024 )) KiB)"; }
x_of() { awk -v a="$(j "$1" "$3")" -v b="$(j "$2" "$3")" 'BEGIN { if (b > 0) printf "x%.2f", a / b; else printf "n/a" }'; }
row "(d) peak RSS after $A_SECS s @5000/s" "$(rss_kib rate-5000)"
row "(d) peak RSS after $RSS_SECS s @5000/s" "$(rss_kib rss-1m)"
if [ "$LONG" = 1 ]; then
    bench rss-10m --rate 5000 --duration 600s
    row "(d) peak RSS after 10 min @5000/s" "$(rss_kib rss-10m): $(x_of rss-10m rss-1m .peak_rss_bytes) of 1 min, anonymous $(x_of rss-10m rss-1m '.peak_anon_rss_bytes // 0'); held: $(held rss-10m && echo yes || echo no)"
fi

section_e

row "machine" "load average $(loadavg) at the end"
log "summary (also in $SUMMARY)"
cat "$SUMMARY"
exit "$FAILED"
