#!/usr/bin/env bash
# GPU readiness (issue 11): on a machine with torch + CUDA and nothing else (no network), in under 8 minutes:
# install deepstation's missing packages from the wheels carried in .whl/, espeak-ng from the .deb files carried in
# .espeak/ (into a private folder, never into /), then the doctor's GPU check (bf16/fp16 matmul against the datasheet
# peak), bf16/fp16 matmul, and training of examples/digits.yaml and examples/speech-digits.yaml with
# `precision: auto` and `--workers auto`, each again with `compile: true`. The figures go into the "GPU check"
# section of benchmarks/RESULTS.md, and with the log into $OUT (or $GPU_CHECK_WORK/out).
#
#   bash benchmarks/gpu_check.sh                              no CUDA: one line, exit 0
#   GPU_CHECK_ON_CPU=1 PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh
#                                                             a dry run of every step on the CPU, 1 epoch each
#
# Settings (environment): PYTHON (python3), GPU_CHECK_BUDGET (seconds for the whole script, 450),
# GPU_CHECK_WORK (/tmp/gpu_check: wheels' target, espeak, run folders, step outputs), GPU_CHECK_RESULTS
# (benchmarks/RESULTS.md), OUT (where the log and the results go; default $GPU_CHECK_WORK/out),
# DEEPSTATION_MAX_EPOCHS (caps every run; 1 by default in the CPU dry run), GPU_CHECK_NO_DPKG=1 (unpack the .debs
# with Python instead of dpkg-deb). Each step runs under `timeout` within the budget; one that fails or overruns is
# recorded in the results with its last lines, and the next step runs. Exit code 0 unless the script itself broke.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
PY=${PYTHON:-python3}
ON_CPU=${GPU_CHECK_ON_CPU:-0}

skipped() { echo "gpu_check: no CUDA GPU here ($1); skipped"; exit 0; }

if [ "$ON_CPU" != 1 ]; then
  command -v "$PY" >/dev/null 2>&1 || skipped "no $PY"
  hint=0  # any sign of an NVIDIA driver; without one, skip without the cost of importing torch
  for p in /dev/nvidiactl /dev/nvidia0 /dev/dxg /proc/driver/nvidia; do
    if [ -e "$p" ]; then hint=1; fi
  done
  if command -v nvidia-smi >/dev/null 2>&1; then hint=1; fi
  if [ "$hint" = 0 ]; then
    v=$("$PY" -c 'from importlib.metadata import version; print("torch " + version("torch"))' 2>/dev/null) ||
      v="torch not installed"
    skipped "$v, no NVIDIA driver or device"
  fi
  probe='
try:
    import torch
except Exception as err:
    print(f"torch not importable: {type(err).__name__}: {err}"[:200]); raise SystemExit(1)
ok = torch.cuda.is_available() and torch.cuda.device_count() > 0
print(f"torch {torch.__version__}" + ("" if ok else ", CUDA not available")); raise SystemExit(0 if ok else 1)'
  if ! why=$(timeout 120 "$PY" -c "$probe" 2>/dev/null); then
    skipped "${why:-the torch probe failed or took over 120 s}"
  fi
fi

START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-450}
RESERVE=15      # seconds kept for the final report
MIN_STEP=20     # a step is not started with less than this
WORK=${GPU_CHECK_WORK:-/tmp/gpu_check}
OUTDIR=${OUT:-$WORK/out}
RESULTS=${GPU_CHECK_RESULTS:-$here/benchmarks/RESULTS.md}
HELPER=$here/benchmarks/gpu_check_helper.py
SITE=$WORK/site
ESPEAK=$WORK/espeak
MATMUL_SECONDS=1
rm -rf "$WORK/steps" "$WORK/runs" "$WORK/tasks"
mkdir -p "$WORK/steps" "$WORK/runs" "$WORK/tasks" "$OUTDIR"
: > "$WORK/steps.tsv"
LOG=$OUTDIR/gpu_check.log
: > "$LOG"
export PY HELPER SITE ESPEAK ON_CPU
export PYTHONUNBUFFERED=1 DEEPSTATION_RUNS_DIR=$WORK/runs DEEPSTATION_DATA_DIR=$WORK/data
export PYTHONPATH=$SITE:$here${PYTHONPATH:+:$PYTHONPATH}
if [ "$ON_CPU" = 1 ]; then export DEEPSTATION_MAX_EPOCHS=${DEEPSTATION_MAX_EPOCHS:-1}; fi

say() { echo "gpu_check: $*" | tee -a "$LOG"; }
left() { echo $(( BUDGET - ($(date +%s) - START) - RESERVE )); }
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4//$'\t'/ }" >> "$WORK/steps.tsv"; }
report() {  # the section so far (or, with --final, the finished one): a partial one survives a kill
  local extra=()
  if [ "$ON_CPU" = 1 ]; then extra+=(--on-cpu); fi
  "$PY" "$HELPER" write --work "$WORK" --results "$RESULTS" --out "$OUTDIR" --budget "$BUDGET" \
    --elapsed "$(( $(date +%s) - START ))" --matmul-seconds "$MATMUL_SECONDS" ${extra[@]+"${extra[@]}"} "$@" \
    >> "$WORK/report.out" 2>> "$LOG" || say "the report could not be written (see the log)"
}

# step NAME MAX_SECONDS NOTE COMMAND...: COMMAND under `timeout`, within what is left of the budget; its output goes
# to files (a process it leaves behind cannot hold a pipe open), then into the log.
step() {
  local name=$1 max=$2 note=$3
  shift 3
  local budget limit rc=0 began ended secs
  printf '%s\n' "$*" > "$WORK/steps/$name.cmd"
  budget=$(left)
  limit=$(( max < budget ? max : budget ))
  if (( limit < MIN_STEP )); then
    say "$name: not run (${budget} s of the budget left)"
    record "$name" skip 0 "not run: ${budget} s of the ${BUDGET} s budget left"
    report
    return 0
  fi
  say "$name: $* (limit ${limit} s)"
  began=$(date +%s%N)
  timeout --kill-after=10 "$limit" "$@" > "$WORK/steps/$name.out" 2> "$WORK/steps/$name.err" < /dev/null || rc=$?
  ended=$(date +%s%N)
  secs=$(( (ended - began) / 1000000 ))
  secs=$(printf '%d.%03d' $(( secs / 1000 )) $(( secs % 1000 )))
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then note="timed out after ${limit} s${note:+; $note}"; fi
  record "$name" "$rc" "$secs" "$note"
  { echo "----- $name: exit $rc, $secs s: $* -----"; cat "$WORK/steps/$name.out" "$WORK/steps/$name.err"; } >> "$LOG"
  if [ "$rc" = 0 ]; then
    say "$name: ok, $secs s"
  else
    say "$name: FAILED (exit $rc) after $secs s; last lines:"
    tail -n 8 "$WORK/steps/$name.err" | sed 's/^/    /'
  fi
  report
}

# train_step NAME SOURCE_YAML MAX_SECONDS [--set KEY=VALUE ...]: a copy of the task with precision auto and
# max_minutes (the step's limit less a minute for start-up, data and the test), then train it.
train_step() {
  local name=$1 src=$2 max=$3
  shift 3
  local budget limit task=$WORK/tasks/$name.yaml
  budget=$(left)
  limit=$(( max < budget ? max : budget ))
  if (( limit - 60 < MIN_STEP )); then
    printf '%s\n' "deepstation train $task" > "$WORK/steps/$name.cmd"
    say "$name: not run (${budget} s of the budget left)"
    record "$name" skip 0 "not run: ${budget} s of the ${BUDGET} s budget left"
    report
    return 0
  fi
  if ! "$PY" "$HELPER" task "$src" "$task" --name "$name" --max-seconds $(( limit - 60 )) \
      --set trainer.precision=auto --set trainer.device=auto "$@" > "$WORK/steps/$name.task" 2>&1; then
    cp "$WORK/steps/$name.task" "$WORK/steps/$name.err"
    printf '%s\n' "gpu_check_helper.py task $src $task" > "$WORK/steps/$name.cmd"
    record "$name" 1 0 "could not write the task copy"
    say "$name: could not write the task copy: $(tail -n 1 "$WORK/steps/$name.task")"
    report
    return 0
  fi
  step "$name" "$limit" "$(tr '\n' ' ' < "$WORK/steps/$name.task")" \
    "$PY" -m deepstation train "$task" --no-track --json --quiet --workers auto
}

# --- the steps that set things up (each runs in its own bash, so `set -e` holds inside it) ---------------------------

install_wheels() {
  set -euo pipefail
  shopt -s nullglob
  local wheels=(.whl/*.whl)
  if (( ${#wheels[@]} == 0 )); then
    echo "no wheels in .whl/: using what is installed"
  elif [ "$ON_CPU" = 1 ] && [ "$("$PY" -c 'import sys; print(sys.version_info[:2] == (3, 12))')" != True ]; then
    echo "CPU dry run on $("$PY" -V): the carried wheels are for CPython 3.12; install skipped"
  else
    rm -rf "$SITE"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${wheels[@]}"
    echo "installed ${#wheels[@]} wheels into $SITE: $(cd .whl && ls *.whl | tr '\n' ' ')"
  fi
  "$PY" -c 'import pydantic, soundfile, yaml, deepstation.config
print("pydantic", pydantic.VERSION, "from", pydantic.__file__)
print("soundfile", soundfile.__version__, "libsndfile", soundfile.__libsndfile_version__)'
}

setup_espeak() {
  set -euo pipefail
  shopt -s nullglob
  if command -v espeak-ng >/dev/null 2>&1 && [ "${GPU_CHECK_CARRIED_ESPEAK:-0}" != 1 ]; then
    echo "espeak-ng already installed: $(command -v espeak-ng)"
    espeak-ng --version
    return 0
  fi
  local debs=(.espeak/*.deb)
  if (( ${#debs[@]} == 0 )); then echo "no espeak-ng here and no .deb files in .espeak/" >&2; return 1; fi
  rm -rf "$ESPEAK"
  mkdir -p "$ESPEAK/root" "$ESPEAK/lib" "$ESPEAK/bin"
  local deb
  for deb in "${debs[@]}"; do
    if command -v dpkg-deb >/dev/null 2>&1 && [ "${GPU_CHECK_NO_DPKG:-0}" != 1 ]; then
      dpkg-deb -x "$deb" "$ESPEAK/root"
    else
      "$PY" "$HELPER" unpack-deb "$deb" "$ESPEAK/root"
    fi
  done
  # libespeak-ng links libpcaudio (PulseAudio, ALSA); espeak-ng --stdout never calls it: a stub stands in
  if [ -f .espeak/libpcaudio.so.0 ]; then
    cp .espeak/libpcaudio.so.0 "$ESPEAK/lib/"
  else
    cc -shared -fPIC -O2 -Wl,-soname,libpcaudio.so.0 -o "$ESPEAK/lib/libpcaudio.so.0" .espeak/pcaudio_stub.c
  fi
  local lib data
  lib=$(dirname "$(find "$ESPEAK/root" -name 'libespeak-ng.so.1' | head -n 1)")
  data=$(dirname "$(dirname "$(find "$ESPEAK/root" -path '*/espeak-ng-data/phontab' | head -n 1)")")
  cat > "$ESPEAK/bin/espeak-ng" <<EOF
#!/bin/sh
# espeak-ng from the carried .deb files (benchmarks/gpu_check.sh); its libraries and data stay in $ESPEAK
LD_LIBRARY_PATH="$ESPEAK/lib:$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" ESPEAK_DATA_PATH="$data" \\
  exec "$ESPEAK/root/usr/bin/espeak-ng" "\$@"
EOF
  chmod +x "$ESPEAK/bin/espeak-ng"
  "$ESPEAK/bin/espeak-ng" --version
  "$ESPEAK/bin/espeak-ng" -v en-gb-scotland+klatt3 -s 150 --stdout "three seven nine" > "$ESPEAK/test.wav"
  local size
  size=$(stat -c %s "$ESPEAK/test.wav")
  if (( size < 1000 )); then echo "espeak-ng wrote only $size bytes" >&2; return 1; fi
  echo "espeak-ng works: 'three seven nine' is $size bytes of WAV"
}

export -f install_wheels setup_espeak

say "started $(date -u '+%Y-%m-%d %H:%M:%S UTC') in $here; budget $BUDGET s; work folder $WORK;" \
  "results $RESULTS; out $OUTDIR"
if [ "$ON_CPU" = 1 ]; then say "CPU dry run (GPU_CHECK_ON_CPU=1), DEEPSTATION_MAX_EPOCHS=$DEEPSTATION_MAX_EPOCHS"; fi

step setup 120 "" bash -c install_wheels
step env 60 "" "$PY" "$HELPER" env --work "$WORK"
step espeak 60 "" bash -c setup_espeak
if [ -x "$ESPEAK/bin/espeak-ng" ]; then export PATH=$ESPEAK/bin:$PATH; fi
step doctor 200 "" "$PY" -m deepstation doctor --only gpu --json
step matmul 90 "" "$PY" "$HELPER" matmul --work "$WORK" --seconds "$MATMUL_SECONDS"
train_step digits examples/digits.yaml 150
step speech-data 120 "" "$PY" "$HELPER" speech-data examples/speech-digits.yaml
train_step speech examples/speech-digits.yaml 210
train_step digits-compile examples/digits.yaml 200 --set trainer.compile=true
train_step speech-compile examples/speech-digits.yaml 240 --set trainer.compile=true
step gpu-tests 150 "" "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py tests/test_device.py

report --final
tee -a "$LOG" < "$OUTDIR/gpu_results.md"
say "done in $(( $(date +%s) - START )) s; results: $RESULTS (section 'GPU check'), $OUTDIR/gpu_results.md, $LOG"
failed=$(awk -F'\t' '$2 != "0" && $2 != "skip" {print $1}' "$WORK/steps.tsv" | tr '\n' ' ')
if [ -n "$failed" ]; then say "steps that failed: $failed(their last lines are in the results)"; fi
exit 0
