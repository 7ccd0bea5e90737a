#!/bin/bash
# A/B of two `sknet` binaries on SKNet-50 batch 1, alternating, three rounds per thread count:
#   tools/ab_sknet_bench.sh OLD_BINARY NEW_BINARY
old=${1:?old sknet binary}; new=${2:?new sknet binary}
for t in 1 2; do
  for r in 1 2 3; do
    b=$("$old" bench --arch sknet50 --threads $t --reps 5 | awk '/median_ms/ {print $2}')
    n=$("$new" bench --arch sknet50 --threads $t --reps 5 | awk '/median_ms/ {print $2}')
    echo "threads $t round $r old $b new $n"
  done
done
