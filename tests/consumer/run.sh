#!/usr/bin/env bash
# Installs the built tree into a scratch prefix, then configures, builds and runs the consumer
# project against it with find_package(saltpeter): its own main.cpp and the embedding examples
# of examples/embedding, whose output is checked here.
set -euo pipefail
build_dir="$1"; source_dir="$2"
scratch="$(mktemp -d)"; trap 'rm -rf "$scratch"' EXIT
cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null
cmake -S "$source_dir/tests/consumer/project" -B "$scratch/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$scratch/prefix" -DCMAKE_BUILD_TYPE=Release \
  -DSALTPETER_EXAMPLES_DIR="$source_dir/examples/embedding" >/dev/null
cmake --build "$scratch/build" >/dev/null

expect_line() {  # expect_line FILE LINE: LINE must be a whole line of FILE
  if ! grep -qxF -- "$2" "$1"; then
    echo "consumer: missing line: $2"; echo "--- output:"; cat "$1"; exit 1
  fi
}
"$scratch/build/consumer" | tee "$scratch/consumer.out"
expect_line "$scratch/consumer.out" "next 2027-03-28T03:00:00+02:00"
grep -q "^253 heartbeat lost" "$scratch/consumer.out"

"$scratch/build/examples/example_schedule_next" "0 30 2 * * * *" Europe/Berlin 2027-03-27T12:00:00+01:00 2 \
  | tee "$scratch/schedule.out"
expect_line "$scratch/schedule.out" "2027-03-29T02:30:00+02:00"
"$scratch/build/examples/example_config_check" "$source_dir/examples/config" 2027-03-27T12:00:00Z \
  | tee "$scratch/config.out"
grep -q "^job berlin_backup .* next 2027-03-28T01:15:00+01:00$" "$scratch/config.out"
"$scratch/build/examples/example_custom_transport" | tee "$scratch/transport.out"
expect_line "$scratch/transport.out" "web01 exit 0 (success) dry-run: /bin/sh -c echo hello"
expect_line "$scratch/transport.out" "transport dry-run: 1 ping, 1 run_all"
echo "consumer: installed package OK"
