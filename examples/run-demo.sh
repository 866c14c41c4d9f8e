#!/bin/bash
# run-demo.sh: the example services and nginx with nginx.conf.example, in
# the foreground, with a few curl lines to try (`make run`).  Ctrl-C stops
# everything.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEMO=$ROOT/build/demo
PY=/usr/bin/python3

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {
    local p=$1
    while ! port_free "$p"; do p=$((p + 1)); done
    echo "$p"
}

CHAT=$(pick_port 8001)
USERS=$(pick_port $((CHAT + 1)))
BILLING=$(pick_port $((USERS + 1)))
CATALOG=$(pick_port $((BILLING + 1)))
GW=$(pick_port 8080)
GH2=$(pick_port 8090)

rm -rf "$DEMO"
mkdir -p "$DEMO/logs" "$DEMO/temp"

sed -e "s#/usr/lib/nginx/modules/ngx_http_discovery_module.so#$ROOT/build/ngx_http_discovery_module.so#" \
    -e "s#127.0.0.1:8001#127.0.0.1:$CHAT#g" \
    -e "s#127.0.0.1:8002#127.0.0.1:$USERS#g" \
    -e "s#127.0.0.1:8003#127.0.0.1:$BILLING#g" \
    -e "s#127.0.0.1:8004#127.0.0.1:$CATALOG#g" \
    -e "s#127.0.0.1:8080#127.0.0.1:$GW#g" \
    -e "s#127.0.0.1:8090#127.0.0.1:$GH2#g" \
    "$ROOT/nginx.conf.example" > "$DEMO/nginx.conf"

pids=()
cleanup() {
    trap - EXIT INT TERM
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

cd "$ROOT"
$PY examples/chat_service.py --port "$CHAT" > "$DEMO/logs/chat.log" 2>&1 &
pids+=($!)
$PY examples/users_service.py --port "$USERS" > "$DEMO/logs/users.log" 2>&1 &
pids+=($!)
$PY examples/billing_service.py --port "$BILLING" > "$DEMO/logs/billing.log" 2>&1 &
pids+=($!)
$PY examples/grpc_service.py --port "$CATALOG" --service shop.Catalog \
    > "$DEMO/logs/catalog.log" 2>&1 &
pids+=($!)

for p in "$CHAT" "$USERS" "$BILLING" "$CATALOG"; do
    for _ in $(seq 100); do port_free "$p" || break; sleep 0.1; done
done

/usr/sbin/nginx -p "$DEMO" -c "$DEMO/nginx.conf" -g 'daemon off;' &
pids+=($!)

G=http://127.0.0.1:$GW
cat <<EOT

Gateway on $G (chat :$CHAT, users :$USERS, billing :$BILLING; logs in $DEMO/logs),
and on 127.0.0.1:$GH2 for gRPC (HTTP/2 only; catalog, a gRPC server, :$CATALOG)

Dashboard on $G/_discovery/ui (open it in a browser on this host;
the management API it uses, writable from 127.0.0.1 only: $G/_discovery/api/)

  curl -s $G/_discovery                      # everything the gateway knows
  curl -s "$G/_discovery/api/explain?method=PUT&path=/users/42"   # who gets it, and why
  curl -s $G/users/1                         # routed to users
  curl -s $G/chat/history/7                  # {user_id:int} on chat
  curl -s -X POST -H 'Authorization: Bearer t' -H 'Content-Type: application/json' \\
       -d '{"message": "hi"}' $G/chat/intelligent
  curl -s $G/billing/invoices                # billing, found by its OpenAPI document
  curl -si $G/nowhere                        # 404: no service has this path
  curl -si -X PUT $G/users/42                # 405: known path, method not published
  kill ${pids[0]}                                 # stop chat: its routes answer 503 within 10 s
  curl -si $G/chat/history/7

  # gRPC, discovered by reflection: unary, server streaming, an unknown method
  $PY examples/grpc_client.py 127.0.0.1:$GH2 /shop.Catalog/Get hello
  $PY examples/grpc_client.py 127.0.0.1:$GH2 /shop.Catalog/Watch tick
  $PY examples/grpc_client.py 127.0.0.1:$GH2 /shop.Catalog/Nope   # UNIMPLEMENTED (12)
  curl -s --http2-prior-knowledge http://127.0.0.1:$GH2/users/1   # REST on the same port

Ctrl-C stops the demo.
EOT

wait "${pids[4]}"
