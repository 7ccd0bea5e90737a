#!/usr/bin/env python3
"""Where PyTorch's time goes in a network, convolution by convolution, next to sknet's phases.

Each nn.Conv2d of the PyTorch network of `--arch` (built as tools/compare_pytorch.py builds it) is
timed alone, as PyTorch runs it inside the whole network: traced with its input shape and passed
through torch.jit.optimize_for_inference (oneDNN), a BatchNorm after it folded in as that pass does
for the network; the cost of calling a traced module (measured on a one-pixel 1x1 convolution) is
subtracted from each. The times are summed by kind (the stem, 1x1 convolutions, grouped or depthwise k x k
convolutions, other k x k convolutions) and set beside the whole network's time measured the same way
and, with --sknet, beside `sknet bench --profile 1`'s phases at the same batch, size and threads.

    /usr/bin/python3 tools/pytorch_conv_times.py --arch resnext50 [--threads 1] [--reps 30]
        [--sknet build/release/apps/sknet]

Isolated layers run with hot caches (their weights stay cached between calls), so their sum is a
lower bound of what they cost inside the network.
"""

import argparse
import os
import subprocess
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def median_ms(fn, reps, warmup=5):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def optimized(module, x):
    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.optimize_for_inference(torch.jit.trace(module.eval(), x, check_trace=False))


def kind_of(conv, index):
    if index == 0:
        return "stem"
    if conv.kernel_size == (1, 1):
        return "1x1"
    return "grouped k x k" if conv.groups > 1 else "k x k"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnext50")
    parser.add_argument("--size", type=int, default=None, help="input height and width (default: the arch's)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--sknet", default=None, help="sknet binary: also print its --profile phases")
    args = parser.parse_args()

    import torch
    import compare_pytorch as cp
    torch.set_num_threads(args.threads)
    net, _ = cp.build_torch_model(args.arch)
    net.eval()
    size = cp.input_size(args.arch, args)
    x = torch.randn(args.batch, 3, size, size)

    convs, inputs = [], {}
    modules = list(net.named_modules())
    for i, (name, m) in enumerate(modules):
        if isinstance(m, torch.nn.Conv2d):
            bn = modules[i + 1][1] if i + 1 < len(modules) and isinstance(modules[i + 1][1], torch.nn.BatchNorm2d) else None
            convs.append((name, m, bn))
            m.register_forward_hook(lambda mod, inp, out, name=name: inputs.update({name: inp[0].shape}) or None)
    with torch.no_grad():
        net(x)
        # What one call of a traced layer costs beyond its convolution (dispatch): a 1x1 convolution of
        # one channel and one pixel; subtracted from every layer.
        tiny_x = torch.randn(1, 1, 1, 1)
        tiny = optimized(torch.nn.Conv2d(1, 1, 1, bias=False), tiny_x)
        overhead = median_ms(lambda: tiny(tiny_x), args.reps * 4)
        totals, counts = {}, {}
        for index, (name, conv, bn) in enumerate(convs):
            layer = torch.nn.Sequential(conv, bn) if bn is not None else conv
            xi = torch.randn(*inputs[name])
            fn = optimized(layer, xi)
            ms = max(0.0, median_ms(lambda: fn(xi), args.reps) - overhead)
            kind = kind_of(conv, index)
            totals[kind] = totals.get(kind, 0.0) + ms
            counts[kind] = counts.get(kind, 0) + 1
        fn = optimized(net, x)
        whole = median_ms(lambda: fn(x), max(5, args.reps // 3))

    print("PyTorch %s (%s), %s, batch %d, %dx%d, %d thread(s); %d reps per layer, medians" % (
        torch.__version__, "oneDNN available: %s" % torch.backends.mkldnn.is_available(), args.arch, args.batch,
        size, size, args.threads, args.reps))
    print("per-call overhead subtracted from each layer: %.3f ms" % overhead)
    print("| convolutions | count | PyTorch ms (each alone, summed) |")
    print("|---|---:|---:|")
    for kind in ("stem", "1x1", "grouped k x k", "k x k"):
        if kind in totals:
            print("| %s | %d | %.2f |" % (kind, counts[kind], totals[kind]))
    print("| all convolutions | %d | %.2f |" % (sum(counts.values()), sum(totals.values())))
    print("| the whole network | | %.2f |" % whole)
    if args.sknet:
        out = subprocess.run([args.sknet, "bench", "--arch", args.arch, "--batch", str(args.batch), "--size",
                              str(size), "--threads", str(args.threads), "--reps", "11", "--profile", "1"],
                             check=True, capture_output=True, text=True).stdout
        print("\nsknet (`%s bench --arch %s --batch %d --size %d --threads %d --reps 11 --profile 1`):" % (
            args.sknet, args.arch, args.batch, size, args.threads))
        for line in out.splitlines():
            if line.startswith("phase") or line.startswith("median_ms"):
                print("  " + line)


if __name__ == "__main__":
    main()
