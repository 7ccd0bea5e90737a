#!/usr/bin/python3
"""Where the bf16 error of an SK bottleneck network comes from, emulated in PyTorch.

sknet's bf16 engine (PrepareOptions precision bf16, `sknet run --precision bf16`) rounds three things
to bfloat16 (nearest even): the BN-folded weights of every 1x1 convolution (conv1, conv3, the
projection shortcut), the inputs of those convolutions (the block input, V), and the activations it
stores between blocks (the block outputs and the projection's output); everything else runs in
float32. This script draws the same random network and inputs as tools/compare_pytorch.py (same
arch, seed, batch and size: `draw_arch`), then runs the PyTorch float32 network with each of those
roundings switched on alone and together (monkeypatched SKUnit.forward), and PyTorch's own bf16
(torch.autocast and a whole-bf16 model) for comparison. It prints max |err| / max |logit| against
the float32 logits for each. Compare the "all three" row with `compare_pytorch.py --precision bf16`'s
measured error of sknet itself.

    /usr/bin/python3 tools/bf16_error_sources.py --arch sknet50 --batch 2 --size 224
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="sknet50", choices=("sknet26", "sknet50", "sknet101"))
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--seed", type=int, default=0, help="compare_pytorch.py's base seed (default 0)")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    import compare_pytorch as cp
    import sk_torch

    torch.set_num_threads(os.cpu_count() or 1)
    net, _, inputs, refs, _ = cp.draw_arch(args.arch, args.seed, [args.batch], args.size, {})
    x, ref = inputs[args.batch], torch.from_numpy(refs[args.batch])

    def bf(t):
        return t.to(torch.bfloat16).to(torch.float32)

    def folded(conv, bn):
        s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return conv.weight * s.view(-1, 1, 1, 1), bn.bias - bn.running_mean * s

    mode = {}

    def pointwise(conv, bn, inp):
        w, b = folded(conv, bn)
        return F.conv2d(bf(inp) if mode["inputs"] else inp, bf(w) if mode["weights"] else w, b, conv.stride)

    def unit_forward(self, inp):
        sc = inp
        if self.downsample is not None:
            sc = pointwise(self.downsample[0], self.downsample[1], inp)
            sc = bf(sc) if mode["stored"] else sc
        y, a = self.conv2(torch.relu(pointwise(self.conv1.conv, self.conv1.bn, inp)))
        out = torch.relu(pointwise(self.conv3.conv, self.conv3.bn, y) + sc)
        return (bf(out) if mode["stored"] else out), a

    original = sk_torch.SKUnit.forward
    sk_torch.SKUnit.forward = unit_forward

    def error(out):
        out = out[0] if isinstance(out, tuple) else out
        return float((out.double() - ref).abs().max() / ref.abs().max())

    rows = []
    for name, m in [("BN folded, nothing rounded", dict(weights=0, inputs=0, stored=0)),
                    ("1x1 weights", dict(weights=1, inputs=0, stored=0)),
                    ("1x1 inputs", dict(weights=0, inputs=1, stored=0)),
                    ("stored activations", dict(weights=0, inputs=0, stored=1)),
                    ("1x1 inputs + stored activations", dict(weights=0, inputs=1, stored=1)),
                    ("all three (sknet's bf16)", dict(weights=1, inputs=1, stored=1))]:
        mode.update(m)
        with torch.no_grad():
            rows.append((name, error(net(x))))
    sk_torch.SKUnit.forward = original
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        rows.append(("PyTorch torch.autocast(bfloat16)", error(net(x))))
    with torch.no_grad():
        rows.append(("PyTorch whole model in bfloat16", error(net.to(torch.bfloat16)(x.to(torch.bfloat16)).float())))

    print("%s, batch %d, %dx%d, compare_pytorch.py seed %d: max |err| / max |logit| vs float32"
          % (args.arch, args.batch, args.size, args.size, args.seed))
    print()
    print("| rounded to bf16 | rel. error |")
    print("|---|---:|")
    for name, e in rows:
        print("| %s | %.2e |" % (name, e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
