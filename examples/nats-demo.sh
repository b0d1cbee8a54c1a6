#!/usr/bin/env bash
# The read side in its own process and database, fed through NATS JetStream:
# starts a private nats-server, runs the bank (events in SQLite, a relay to
# JetStream), then the balances read side (its read model in another SQLite
# file), which waits for the bank's last receipt. Everything lives in a
# temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

server=$(command -v nats-server || true)
[ -z "$server" ] && [ -x /usr/sbin/nats-server ] && server=/usr/sbin/nats-server
if [ -z "$server" ]; then
    echo "nats-server is not installed. Install it, then run this again:" >&2
    echo "  Debian/Ubuntu: sudo apt-get install nats-server" >&2
    echo "  elsewhere:     https://docs.nats.io/running-a-nats-service/introduction/installation" >&2
    exit 1
fi

dir=$(mktemp -d)
port=${NATS_PORT:-14222}
"$server" -js -a 127.0.0.1 -p "$port" -sd "$dir/jetstream" >"$dir/nats.log" 2>&1 &
nats=$!
trap 'kill $nats 2>/dev/null || true; wait $nats 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
    grep -q "Server is ready" "$dir/nats.log" && break
    sleep 0.1
done
grep -q "Server is ready" "$dir/nats.log" || { cat "$dir/nats.log" >&2; exit 1; }
url="nats://127.0.0.1:$port"
echo "== nats-server with JetStream at $url (data in $dir)"

cargo build -q --bin bank --bin balances
echo
echo "== the write side: cargo run --bin bank -- --store sqlite:$dir/bank.db --relay $url"
BANK_RECEIPT_FILE="$dir/receipt.json" \
    cargo run -q --bin bank -- --store "sqlite:$dir/bank.db" --relay "$url"
echo
echo "== the read side: cargo run --bin balances -- --nats $url --read-store sqlite:$dir/reads.db --after <receipt>"
cargo run -q --bin balances -- --nats "$url" --read-store "sqlite:$dir/reads.db" --after "$(cat "$dir/receipt.json")"
