# The step runner that benchmarks/reproduce_*.sh source: each step's output
# to a log, chains side by side. Needs $logs (a folder) and $JOBS set.

# step NAME COMMAND...: runs COMMAND, its output to $logs/NAME.log.
step() {
  local name=$1 log="$logs/$1.log"
  shift
  echo "==> $(date +%H:%M:%S) $name (log: $log)"
  if ! "$@" >"$log" 2>&1; then
    tail -n 15 "$log" >&2
    echo "FAILED: $name; see $log. Rerun the script to resume." >&2
    return 1
  fi
  echo "<== $(date +%H:%M:%S) $name"
}

# run NAME COMMAND...: COMMAND in the background, at most JOBS at a time;
# a failure leaves $logs/NAME.failed.
run() {
  local name=$1
  shift
  while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n || true; done
  rm -f "$logs/$name.failed"
  { "$@" || touch "$logs/$name.failed"; } &
}

# check_failed: exits 1, naming them, if any step chain failed.
check_failed() {
  if compgen -G "$logs/*.failed" >/dev/null; then
    echo "Failed: $(cd "$logs" && echo *.failed); rerun the script to" \
      "resume." >&2
    exit 1
  fi
}

# parse_smoke [ARG]: smoke=true for --smoke, false for nothing; else usage.
parse_smoke() {
  case "${1:-}" in
    --smoke) smoke=true ;;
    "") smoke=false ;;
    *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
  esac
}

# set_threads: THREADS CPU threads for TensorFlow and OpenMP; THREADS
# defaults to the cores shared among JOBS, at least 1.
set_threads() {
  THREADS=${THREADS:-$(( $(nproc) / JOBS > 1 ? $(nproc) / JOBS : 1 ))}
  export TF_NUM_INTRAOP_THREADS=$THREADS TF_NUM_INTEROP_THREADS=$THREADS \
    OMP_NUM_THREADS=$THREADS
}
