#!/usr/bin/env bash
# The e2e tier while two CPU-bound processes load the machine (issue #10): starts two busy loops,
# runs `pytest -m e2e` (extra arguments go to pytest), always stops the loops (trap, by pid), and
# prints the load average before and after.
set -uo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
hogs=()
stop_hogs() {
  for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null; done
  wait "${hogs[@]}" 2>/dev/null
}
trap stop_hogs EXIT INT TERM
for _ in 1 2; do
  python3 -c 'while True: pass' &
  hogs+=("$!")
done
echo "e2e-under-load: 2 CPU hogs (pids ${hogs[*]}) on $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
started=$(date +%s)
"$venv/bin/python" -m pytest -m e2e -q "$@"
status=$?
echo "e2e-under-load: pytest exit $status after $(( $(date +%s) - started ))s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
