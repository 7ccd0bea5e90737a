#!/bin/bash
# A/B of two `sknet` binaries, alternating within each round so both see the same host state:
#   tools/ab_sknet_bench.sh OLD_BINARY NEW_BINARY [ARCH] [BATCH] [ROUNDS] [THREADS...]
# Defaults: sknet50, batch 1, 9 rounds, threads 1 and 2. Each round times 5 calls per side
# (`sknet bench --reps 5`, median of the five) and forms the paired ratio new/old; the summary is
# the median of the paired ratios, which a noisy shared host disturbs far less than either
# side's own median. The order within a round alternates (old first, then new first).
set -euo pipefail
old=${1:?old sknet binary}; new=${2:?new sknet binary}
arch=${3:-sknet50}; batch=${4:-1}; rounds=${5:-9}
shift $(( $# < 5 ? $# : 5 ))
threads=("$@"); [ ${#threads[@]} -gt 0 ] || threads=(1 2)

time_one() {  # binary threads -> median ms of 5 calls
  "$1" bench --arch "$arch" --batch "$batch" --threads "$2" --reps 5 | awk '/median_ms/ {print $2}'
}

echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), cpu family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')"
echo "old: $old ($("$old" info --arch "$arch" | awk '/^isa/ {print $2}'))"
echo "new: $new ($("$new" info --arch "$arch" | awk '/^isa/ {print $2}'))"
for t in "${threads[@]}"; do
  ratios=()
  olds=(); news=()
  for r in $(seq 1 "$rounds"); do
    if (( r % 2 )); then b=$(time_one "$old" "$t"); n=$(time_one "$new" "$t")
    else n=$(time_one "$new" "$t"); b=$(time_one "$old" "$t"); fi
    olds+=("$b"); news+=("$n")
    ratios+=("$(awk -v n="$n" -v b="$b" 'BEGIN {printf "%.4f", n / b}')")
    echo "$arch batch $batch threads $t round $r: old $b ms, new $n ms, new/old ${ratios[-1]}"
  done
  med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
  echo "$arch batch $batch threads $t: median old $(med "${olds[@]}") ms, median new $(med "${news[@]}") ms, median paired new/old $(med "${ratios[@]}") over $rounds rounds"
done
