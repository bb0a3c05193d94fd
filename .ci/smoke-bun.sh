#!/usr/bin/env bash
# Starts the service once on Bun and ingests one event through the plain-JSON face, then reads it
# back through the database. Runs against $SMOKE_DATABASE_URL if set, else embedded PGlite.
set -euo pipefail
cd "$(dirname "$0")/.."

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
data_dir=$(mktemp -d)
log=$(mktemp)
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$data_dir" "$log"
}
trap cleanup EXIT

# Bun is fetched where it is used (see bun-path.sh); its binary runs directly so the cleanup's kill
# reaches the service.
bun=$(sh .ci/bun-path.sh)

admin_key="smoke-admin-$(node -e 'console.log(require("crypto").randomBytes(24).toString("hex"))')"
PORT=$port HOST=127.0.0.1 TELEMETRY_ADMIN_KEY="$admin_key" DATABASE_URL="${SMOKE_DATABASE_URL:-}" PGLITE_DIR="$data_dir" "$bun" server/main.ts >"$log" 2>&1 &
pid=$!

for _ in $(seq 1 60); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "service exited early:"; cat "$log"; exit 1; fi
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { echo "service never became ready:"; cat "$log"; exit 1; }

grep -q '"runtime":"bun"' "$log" || { echo "not running on Bun:"; cat "$log"; exit 1; }
# Every event belongs to a workspace: name one first.
workspace=$(curl -fsS -X POST "http://127.0.0.1:$port/api/admin/workspaces" -H 'content-type: application/json' -H "authorization: Bearer $admin_key" \
  -d "{\"name\":\"Bun smoke $$\"}" | node -e 'let s="";process.stdin.on("data",(c)=>(s+=c)).on("end",()=>console.log(JSON.parse(s).id))')
response=$(curl -fsS -X POST "http://127.0.0.1:$port/api/events" -H 'content-type: application/json' -H "authorization: Bearer $admin_key" \
  -d "{\"source\":\"cli\",\"eventType\":\"custom\",\"name\":\"smoke.bun\",\"workspaceId\":\"$workspace\"}")
echo "bun smoke: ingest answered $response"
echo "$response" | grep -q '"id":"' || { echo "unexpected answer"; cat "$log"; exit 1; }

# The live stream (SSE) on Bun: subscribe with plain curl, ingest, see the event arrive with an id.
input=$(node -e 'console.log(encodeURIComponent(JSON.stringify({json:{workspaceId:process.argv[1]}})))' "$workspace")
# A key never goes in a URL: mint a short-lived stream ticket for the workspace and send that.
ticket=$(curl -fsS -X POST "http://127.0.0.1:$port/api/live/ticket" -H 'content-type: application/json' -H "authorization: Bearer $admin_key" \
  -d "{\"workspaceId\":\"$workspace\"}" | node -e 'let s="";process.stdin.on("data",(c)=>(s+=c)).on("end",()=>console.log(JSON.parse(s).ticket))')
params=$(node -e 'console.log(encodeURIComponent(JSON.stringify({ticket:process.argv[1]})))' "$ticket")
stream_out=$(mktemp)
curl -sSN --max-time 8 -H 'accept: text/event-stream' "http://127.0.0.1:$port/trpc/telemetry.live?input=$input&connectionParams=$params" >"$stream_out" 2>/dev/null &
curl_pid=$!
sleep 1.5
curl -fsS -X POST "http://127.0.0.1:$port/api/events" -H 'content-type: application/json' -H "authorization: Bearer $admin_key" \
  -d "{\"source\":\"cli\",\"eventType\":\"custom\",\"name\":\"smoke.live\",\"workspaceId\":\"$workspace\"}" >/dev/null
for _ in $(seq 1 30); do grep -q 'smoke.live' "$stream_out" && break; sleep 0.2; done
kill "$curl_pid" 2>/dev/null || true
grep -q 'smoke.live' "$stream_out" && grep -qE '^id: [0-9]+-[0-9]+' "$stream_out" || { echo "live stream did not deliver:"; cat "$stream_out"; cat "$log"; exit 1; }
rm -f "$stream_out"
echo "bun smoke: live stream delivered the event"
echo "bun smoke: ok"
