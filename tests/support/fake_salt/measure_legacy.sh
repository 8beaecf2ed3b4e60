#!/usr/bin/env bash
# Prints numbers, not a test: a legacy job on 3 fake minions through spd --transport salt-cli: wall time and salt/salt-run calls.
set -eu
W="$(cd "$(dirname "$0")/../../.." && pwd)"; D=$(mktemp -d /tmp/sp-measure-XXXXXX); mkdir -p $D/config $D/state
cat > $D/config/jobs.yaml <<YAML
saltpeter_config:
  logdir: $D/log
  machines_ws_bind_addr: 127.0.0.1
  machines_ws_port: 0
  salt_binary: $W/tests/support/fake_salt/salt
  salt_run_binary: $W/tests/support/fake_salt/salt-run
measure:
  command: "sleep ${SLEEP:-3}; echo done"
  targets: 'm*'
  schedule: '@yearly'
  use_wrapper: false
  timeout: 60
YAML
export FAKE_SALT_MINIONS=m1,m2,m3 FAKE_SALT_STATE=$D/state FAKE_SALT_ARGV_LOG=$D/argv.log
start=$(date +%s.%N)
$W/build/apps/spd/spd -c $D/config --run-once measure --transport salt-cli > $D/out 2> $D/err || true
end=$(date +%s.%N)
echo "wall: $(echo "$end - $start" | bc) s for a ${SLEEP:-3} s command on 3 minions"
echo "salt calls: $(grep -vc '^\["salt-run"' $D/argv.log) (test.ping + one --async publication)"
echo "salt-run jobs.list_job polls: $(grep -c 'jobs.list_job' $D/argv.log)"
grep "=====" $D/out
rm -rf $D
