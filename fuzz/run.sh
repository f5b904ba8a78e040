#!/usr/bin/env bash
# `make fuzz`: runs every fuzz target for FUZZ_SECONDS (default 60) under libFuzzer with a
# 512 MB RSS limit, seeded from the checked-in fuzzing/corpus/<target> (read only) and the
# working corpus fuzz/corpus/<target> (not checked in; libFuzzer adds its finds there), then
# prints runs and crashes per target. Needs nightly (`rustup toolchain install nightly`) and cargo-fuzz
# (`cargo install cargo-fuzz`). A crash leaves its input under fuzz/artifacts/<target>/: copy it
# into fuzzing/corpus/<target>/ and `make test` replays it from then on.
set -u
cd "$(dirname "$0")"
secs="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-$(ls fuzz_targets | sed 's/\.rs$//')}"
status=0
printf '%-20s %14s %8s %10s\n' target runs seconds crashed | tee results.txt
for t in $targets; do
  mkdir -p "corpus/$t" "../fuzzing/corpus/$t"
  log="logs-$t.txt"
  cargo +nightly fuzz run "$t" "corpus/$t" "../fuzzing/corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=512 -timeout=10 >"$log" 2>&1
  rc=$?
  runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' | tail -1)
  crashed=no
  if [ $rc -ne 0 ]; then crashed=yes; status=1; fi
  printf '%-20s %14s %8s %10s\n' "$t" "${runs:-?}" "$secs" "$crashed" | tee -a results.txt
done
exit $status
