#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# rgw.sh - a throw-away one-node Ceph cluster with a radosgw S3 endpoint on
# loopback, started by hand (no systemd, no cephadm), for the S3 blob
# backend's tests and benchmarks.
#
#   rgw.sh start DIR PORT    start in DIR (created; must be empty or absent),
#                            S3 on 127.0.0.1:PORT; writes DIR/env
#   rgw.sh stop DIR          stop what `start DIR` started (by its PIDs)
#   rgw.sh env DIR           print DIR/env
#
# One monitor (on a free loopback port of its own), one memstore OSD,
# radosgw with the beast frontend; auth none, pool size 1: nothing survives
# `stop`. Several clusters may run at once in different DIRs (each has its
# own fsid, config and mon port) and inside `unshare --net` once lo is up.
#
# DIR/env (shell syntax, also read by the tests):
#   S3_ENDPOINT=http://127.0.0.1:PORT  S3_REGION=...  S3_BUCKET=...
#   S3_ACCESS_KEY=...  S3_SECRET_KEY=...
#   S3_VHOST_ENDPOINT=http://localhost:PORT  for virtual-host addressing:
#   radosgw's rgw_dns_name is localhost and curl resolves BUCKET.localhost
#   to loopback itself
# DIR/pids holds "name pid" lines; DIR/log/ the daemons' logs.
#
# Needed settings found on the way: paxos_propose_interval small (else the
# monitor batches proposals for ~20 s before the OSD and pools are up);
# ms_mon_client_mode and ms_client_mode "crc secure" (else radosgw loops on
# auth error -13 with auth none); the beast frontend's tcp_nodelay=1 (else
# a small GET's body, written after its headers, waits ~40 ms for the
# client's delayed ACK: Nagle; manifests on S3 ran at ~36 req/s).
set -euo pipefail

die() {
    echo "rgw.sh: $*" >&2
    exit 1
}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pid_of() { # DIR NAME
    awk -v n="$2" '$1 == n { print $2 }' "$1/pids" 2>/dev/null || true
}

record() { # DIR NAME PID
    echo "$2 $3" >>"$1/pids"
}

alive() {
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null
}

ceph_cmd() { # DIR args...
    local d=$1
    shift
    timeout 30 ceph -c "$d/ceph.conf" --connect-timeout 20 "$@"
}

# Stop daemon NAME of DIR: SIGTERM, wait up to 20 s, then SIGKILL.
stop_one() {
    local d=$1 name=$2 pid
    pid=$(pid_of "$d" "$name")
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do
        alive "$pid" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

cmd_stop() {
    local d=$1
    [ -f "$d/pids" ] || return 0
    # in this order, one after the other: radosgw stopping while the OSD
    # is already gone hangs on its outstanding RADOS requests (~20 s)
    stop_one "$d" rgw
    stop_one "$d" osd
    stop_one "$d" mon
    rm -f "$d/pids"
}

cmd_start() {
    local d=$1 port=$2
    command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null ||
        die "radosgw, ceph-mon and ceph-osd must be installed (scripts/deps.sh --test)"
    mkdir -p "$d"
    [ -z "$(ls -A "$d")" ] || die "$d is not empty"
    d=$(cd "$d" && pwd)
    mkdir -p "$d/mon" "$d/osd" "$d/run" "$d/log" "$d/rgw"
    local monport fsid osduuid
    monport=$(free_port)
    fsid=$(cat /proc/sys/kernel/random/uuid)
    osduuid=$(cat /proc/sys/kernel/random/uuid)
    cat >"$d/ceph.conf" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$monport
public_addr = 127.0.0.1
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc secure
ms_client_mode = crc secure
ms_bind_ipv6 = false
ms_bind_msgr1 = false
paxos_propose_interval = 0.05
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
osd_objectstore = memstore
memstore_device_bytes = 2147483648
run_dir = $d/run
admin_socket = $d/run/\$name.asok
log_file = $d/log/\$name.log
pid_file =
mon_data = $d/mon/\$name
osd_data = $d/osd/\$name
keyring = $d/keyring
erasure_code_dir = /usr/lib/x86_64-linux-gnu/ceph/erasure-code
plugin_dir = /usr/lib/x86_64-linux-gnu/ceph
[client.rgw]
rgw_frontends = beast endpoint=127.0.0.1:$port tcp_nodelay=1
rgw_data = $d/rgw
rgw_dns_name = localhost
rgw_enable_usage_log = false
rgw_gc_obj_min_wait = 60
EOF
    ceph-authtool --create-keyring "$d/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    monmaptool --create --addv a "[v2:127.0.0.1:$monport]" --fsid "$fsid" "$d/monmap" >/dev/null
    ceph-mon -c "$d/ceph.conf" -i a --mkfs --monmap "$d/monmap" --keyring "$d/keyring" \
        >"$d/log/mkfs.log" 2>&1 || die "ceph-mon --mkfs failed (see $d/log)"
    ceph-mon -c "$d/ceph.conf" -i a -f >"$d/log/mon.out" 2>&1 &
    record "$d" mon $!
    local id
    id=$(ceph_cmd "$d" osd new "$osduuid") || die "osd new failed (see $d/log)"
    mkdir -p "$d/osd/osd.$id"
    ceph-osd -c "$d/ceph.conf" -i "$id" --mkfs --osd-uuid "$osduuid" >>"$d/log/mkfs.log" 2>&1 ||
        die "ceph-osd --mkfs failed (see $d/log)"
    ceph-osd -c "$d/ceph.conf" -i "$id" -f >"$d/log/osd.out" 2>&1 &
    record "$d" osd $!
    radosgw -c "$d/ceph.conf" -n client.rgw -f >"$d/log/rgw.out" 2>&1 &
    record "$d" rgw $!

    local key secret region=default bucket=pullcache-test
    key=PC$(openssl rand -hex 9 | tr a-f A-F)
    secret=$(openssl rand -hex 20)
    # the frontend answers once the gateway is initialised
    local ok=""
    for _ in $(seq 1 600); do
        alive "$(pid_of "$d" rgw)" || break
        if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/"; then
            ok=1
            break
        fi
        sleep 0.05
    done
    [ -n "$ok" ] || die "radosgw did not come up on 127.0.0.1:$port (see $d/log)"
    radosgw-admin -c "$d/ceph.conf" -n client.rgw user create --uid=pullcache-test \
        --display-name=pullcache-test --access-key="$key" --secret-key="$secret" \
        >"$d/log/user.json" 2>"$d/log/user.err" || die "radosgw-admin user create failed"
    local code
    code=$(curl -s -o "$d/log/bucket.out" -w '%{http_code}' -X PUT \
        --aws-sigv4 "aws:amz:$region:s3" --user "$key:$secret" \
        -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "http://127.0.0.1:$port/$bucket") || true
    [ "$code" = 200 ] || die "creating bucket $bucket answered $code (see $d/log/bucket.out)"
    umask 077
    cat >"$d/env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$port
S3_VHOST_ENDPOINT=http://localhost:$port
S3_REGION=$region
S3_BUCKET=$bucket
S3_ACCESS_KEY=$key
S3_SECRET_KEY=$secret
EOF
}

case "${1:-}" in
start)
    [ $# -eq 3 ] || die "usage: rgw.sh start DIR PORT"
    # a failed start (die exits) stops whatever it had started
    trap 'rc=$?; [ "$rc" -eq 0 ] || cmd_stop "$2"' EXIT
    cmd_start "$2" "$3"
    ;;
stop)
    [ $# -eq 2 ] || die "usage: rgw.sh stop DIR"
    cmd_stop "$2"
    ;;
env)
    cat "$2/env"
    ;;
*)
    die "usage: rgw.sh start DIR PORT | stop DIR | env DIR"
    ;;
esac
