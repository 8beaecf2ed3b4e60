#!/usr/bin/env bash
# import_crontab.sh SPCTL CRONTAB EXPECTED_RC [OPTIONS...]: converts CRONTAB with spctl
# import-crontab into a new directory, checks its exit status, prints its problems and the YAML,
# then runs `spctl validate` on the result (its exit status is the script's).
set -euo pipefail
spctl="$1"; crontab="$2"; expected_rc="$3"; shift 3
dir="$(mktemp -d)"; trap 'rm -rf "$dir"' EXIT
rc=0
"$spctl" import-crontab "$crontab" -o "$dir/imported.yaml" "$@" 2>"$dir/stderr" || rc=$?
sed 's/^/import: /' "$dir/stderr"
if [ "$rc" != "$expected_rc" ]; then echo "import-crontab exited $rc, expected $expected_rc"; exit 1; fi
[ "$(stat -c %a "$dir/imported.yaml")" = 644 ] || { echo "imported.yaml is not mode 0644"; exit 1; }
cat "$dir/imported.yaml"
"$spctl" validate -c "$dir"
