#!/usr/bin/python3
"""One SK convolution, sknet vs PyTorch (+ oneDNN), side by side in one run.

At the four SKNet-50 SK-conv shapes (batch 1; C = 128 at 56x56, 256 at 28x28, 512 at 14x14,
1024 at 7x7; SK[2, 32, 16], L = 32, stride 1) and 1 and 2 threads:

* PyTorch: tools/sk_torch.py SKConv (timm's structure: both branch convs + BN + ReLU, stack,
  sum, global pool, fc_reduce + BN + ReLU, fc_select, softmax, weighted sum), eval mode,
  random weights, torch.jit.trace + torch.jit.optimize_for_inference (BN folded, oneDNN convs),
  under no_grad. Two numbers: the wall-clock median per call, and the per-primitive time = the
  sum of the self CPU times of every operator torch.profiler records inside one call (median
  over profiled calls): the time PyTorch's kernels spend, without the Python/TorchScript
  dispatch between them. And, strictest, the time of just the two grouped 3x3 convolution
  primitives (oneDNN's own exec times, DNNL_VERBOSE=1, in a subprocess): what PyTorch spends on
  the branch convolutions alone, without the stack, sum, attention and weighted sum.
* sknet: bench/bench_sk_ops BM_PreparedSKConv (PreparedSKConv::forward: the same work, V written
  to memory), Google Benchmark's median real time over repetitions.

The two sides alternate for --rounds rounds; the medians are over all rounds. Ratios = PyTorch
per-primitive time / sknet time and PyTorch branch-conv primitives / sknet time (> 1: sknet faster).

    /usr/bin/python3 tools/compare_sk_conv.py [--bench build/native/bench/bench_sk_ops] [--rounds 3]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sk_torch import SKConv, randomize_  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = ((128, 56), (256, 28), (512, 14), (1024, 7))


class VOnly(torch.nn.Module):
    def __init__(self, sk):
        super().__init__()
        self.sk = sk

    def forward(self, x):
        return self.sk(x)[0]


def torch_model(c, hw):
    g = torch.Generator().manual_seed(c)
    sk = SKConv(c, c, paths=2, groups=32, reduction=16, min_width=32)
    randomize_(sk, g)
    net = VOnly(sk).eval()
    x = torch.randn(1, c, hw, hw, generator=g)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torch.jit.optimize_for_inference(torch.jit.trace(net, x, check_trace=False))
        for _ in range(5):
            model(x)
    return model, x


@torch.no_grad()
def time_torch(model, x, calls):
    wall = []
    for _ in range(calls):
        t0 = time.perf_counter()
        model(x)
        wall.append((time.perf_counter() - t0) * 1e3)
    prim = []
    for _ in range(max(3, calls // 4)):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            model(x)
        # Self times of every recorded operator; their sum is the time spent inside operators.
        prim.append(sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e3)
    return wall, prim


def verbose_worker(c, hw, threads, calls):
    """Runs in a subprocess with DNNL_VERBOSE=1: warm-up, a marker line, then `calls` calls."""
    torch.set_num_threads(threads)
    model, x = torch_model(c, hw)
    with torch.no_grad():
        model(x)
        print("=== timed", flush=True)
        for _ in range(calls):
            model(x)
    sys.stdout.flush()


def onednn_branch_ms(c, hw, threads, calls=10):
    """Median over calls of the summed exec times of oneDNN's grouped (g32) convolutions."""
    env = dict(os.environ, DNNL_VERBOSE="1", ONEDNN_VERBOSE="1")
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--verbose-worker", str(c), str(hw),
                          str(threads), str(calls)], check=True, capture_output=True, text=True, env=env).stdout
    timed = out.split("=== timed", 1)[1].splitlines()
    convs = [float(l.rsplit(",", 1)[1]) for l in timed
             if l.startswith(("onednn_verbose,exec", "dnnl_verbose,exec")) and ",convolution," in l
             and ",g32mb" in l]
    if len(convs) != 2 * calls:
        sys.exit("compare_sk_conv: expected %d grouped convolutions in the oneDNN log, found %d" % (2 * calls, len(convs)))
    return statistics.median(convs[2 * i] + convs[2 * i + 1] for i in range(calls))


def time_sknet(bench, c, hw, threads, reps):
    name = "BM_PreparedSKConv/C:%d/HW:%d/threads:%d/min_time:0.200/real_time" % (c, hw, threads)
    out = subprocess.run([bench, "--benchmark_filter=^%s$" % name, "--benchmark_repetitions=%d" % reps,
                          "--benchmark_format=json"], check=True, capture_output=True, text=True).stdout
    runs = [b for b in json.loads(out)["benchmarks"] if b.get("run_type") == "iteration"]
    if not runs:
        sys.exit("compare_sk_conv: %s did not run %s" % (bench, name))
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0}
    return [b["real_time"] * scale[b["time_unit"]] for b in runs]


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "--verbose-worker":
        return verbose_worker(*(int(v) for v in sys.argv[2:]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "native", "bench", "bench_sk_ops"))
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=40, help="PyTorch timed calls per round")
    ap.add_argument("--reps", type=int, default=5, help="Google Benchmark repetitions per round")
    a = ap.parse_args()
    if not os.path.exists(a.bench):
        sys.exit("compare_sk_conv: %s not found (cmake --workflow --preset native)" % a.bench)
    rows = []
    for threads in a.threads:
        torch.set_num_threads(threads)
        for c, hw in SHAPES:
            model, x = torch_model(c, hw)
            wall, prim, ours = [], [], []
            for _ in range(a.rounds):
                w, p = time_torch(model, x, a.calls)
                wall += w
                prim += p
                ours += time_sknet(a.bench, c, hw, threads, a.reps)
            row = dict(c=c, hw=hw, threads=threads, torch_wall=statistics.median(wall),
                       torch_prim=statistics.median(prim), sknet=statistics.median(ours),
                       torch_convs=onednn_branch_ms(c, hw, threads))
            rows.append(row)
            print("C %4d %2dx%-2d  T%d  PyTorch %.3f ms (per-primitive %.3f, branch convs %.3f)  sknet %.3f ms  "
                  "ratio %.2fx" % (c, hw, hw, threads, row["torch_wall"], row["torch_prim"], row["torch_convs"],
                                   row["sknet"], row["torch_prim"] / row["sknet"]), file=sys.stderr, flush=True)
    print("| SK conv (C, map) | threads | PyTorch wall ms | PyTorch per-primitive ms | PyTorch branch convs ms "
          "| sknet ms | per-primitive / sknet | branch convs / sknet |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %d, %dx%d | %d | %.3f | %.3f | %.3f | %.3f | %.2fx | %.2fx |" % (
            r["c"], r["hw"], r["hw"], r["threads"], r["torch_wall"], r["torch_prim"], r["torch_convs"], r["sknet"],
            r["torch_prim"] / r["sknet"], r["torch_convs"] / r["sknet"]))
    print("\ntorch %s, %d rounds; command: /usr/bin/python3 tools/compare_sk_conv.py %s" % (
        torch.__version__, a.rounds, " ".join(sys.argv[1:])))


if __name__ == "__main__":
    main()
