#!/usr/bin/python3
"""Generate sknet's golden test fixtures with PyTorch.

Run from the repository root:

    /usr/bin/python3 tools/gen_fixtures.py               # self-check, then (re)write all fixtures
    /usr/bin/python3 tools/gen_fixtures.py --self-check  # only the self-check

Writes tests/data/{sk_conv,conv2d,max_pool2d}/<case>.safetensors (all tensors F32).
Weights and inputs are drawn in float32 from fixed seeds; expected outputs are computed in
float64 from those exact float32 values (module.double(), input.double()) and rounded to
float32 once, so the goldens are as accurate as float32 storage allows.
"""

import argparse
import hashlib
import math
import os
import sys
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sk_torch import (BN_EPS, SKConv, attn_width, branch_geometry, randomize_,  # noqa: E402
                      read_safetensors, write_safetensors)

GENERATOR = "tools/gen_fixtures.py"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
SIZE_BUDGET = 2_500_000


def case_seed(kind, name):
    """A fixed seed derived from the case name only (stable under reordering of the lists)."""
    return zlib.crc32(("%s/%s" % (kind, name)).encode("utf-8")) & 0x7FFFFFFF


def out_size(n, k, s, p, d=1):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


# ----------------------------------------------------------------------------- case lists

# (paths M, groups G, in C, out C, reduction r, min_width L, stride, H, W, batch, branch_kernels)
SK_CASES = [
    # ResNeXt-like SK unit: G=32, C=64; d = C//r (r=2 -> 32) and d = L (r=16, L=32 -> 32)
    (2, 32, 64, 64, 2, 8, 1, 7, 9, 1, "dilated"),
    (2, 32, 64, 64, 16, 32, 1, 7, 9, 1, "dilated"),
    (3, 32, 64, 64, 16, 32, 1, 13, 11, 1, "dilated"),
    (3, 32, 64, 64, 16, 32, 2, 13, 11, 1, "full"),      # 3x3, 5x5, 7x7 kernels, stride 2
    (2, 32, 64, 64, 16, 32, 2, 8, 8, 3, "full"),
    (3, 32, 64, 64, 2, 8, 1, 8, 8, 1, "full"),
    # in_channels != out_channels with G=32
    (2, 32, 32, 64, 16, 32, 1, 9, 7, 1, "dilated"),
    (3, 32, 32, 64, 2, 8, 2, 9, 7, 3, "full"),
    # G=4, C=24 (d = L = 8), and 16 -> 24
    (2, 4, 24, 24, 16, 8, 1, 7, 9, 1, "dilated"),
    (3, 4, 24, 24, 16, 8, 2, 13, 11, 3, "dilated"),
    (2, 4, 16, 24, 2, 8, 1, 9, 7, 3, "full"),            # d = 12
    (3, 4, 16, 24, 16, 8, 2, 7, 9, 1, "dilated"),
    (2, 4, 48, 48, 4, 8, 2, 7, 9, 1, "dilated"),          # d = 12
    # G=1 (dense) with small C
    (2, 1, 8, 8, 2, 4, 1, 7, 9, 1, "dilated"),            # d = 4
    (3, 1, 8, 8, 2, 4, 1, 9, 7, 3, "dilated"),
    (3, 1, 12, 12, 4, 8, 2, 13, 11, 1, "full"),           # d = L = 8
    (2, 1, 12, 12, 2, 4, 1, 8, 8, 3, "dilated"),          # d = 6, even map
    # depthwise G=C
    (2, 16, 16, 16, 2, 4, 1, 7, 9, 1, "dilated"),         # d = 8
    (3, 16, 16, 16, 16, 8, 2, 9, 7, 3, "full"),           # d = L = 8
    (2, 48, 48, 48, 4, 8, 1, 13, 11, 1, "dilated"),       # d = 12
    (3, 48, 48, 48, 16, 32, 2, 8, 8, 1, "dilated"),       # d = L = 32
    # 1x1 maps: every dilated tap but the centre falls into padding; stride 2 on 1x1
    (2, 32, 64, 64, 2, 8, 1, 1, 1, 3, "dilated"),
    (3, 4, 24, 24, 16, 8, 2, 1, 1, 1, "dilated"),
    (3, 16, 16, 16, 2, 8, 2, 1, 1, 3, "full"),
]

# (in C, out C, kh, kw, stride, padding, dilation, groups, bias, batch, H, W)
CONV_CASES = [
    (4, 8, 1, 1, 1, 0, 1, 1, True, 1, 7, 9),       # {1,1,1,0}
    (8, 8, 3, 3, 1, 1, 1, 1, True, 2, 9, 7),       # {3,1,1,1}
    (8, 12, 3, 3, 1, 2, 2, 2, False, 1, 13, 11),   # {3,2,1,2}
    (12, 8, 3, 3, 2, 1, 1, 4, True, 2, 7, 9),      # {3,1,2,1}
    (8, 8, 3, 3, 2, 2, 2, 8, True, 1, 13, 11),     # {3,2,2,2} depthwise
    (4, 8, 5, 5, 1, 2, 1, 1, False, 2, 9, 7),      # {5,1,1,2}
    (12, 12, 5, 5, 2, 0, 1, 4, True, 1, 13, 11),   # {5,1,2,0}
    (17, 17, 7, 7, 2, 3, 1, 17, True, 1, 9, 7),    # {7,1,2,3} depthwise, odd C
    (8, 4, 3, 3, 1, 3, 3, 2, True, 1, 7, 9),       # {3,3,1,3}
    (17, 8, 3, 3, 1, 0, 1, 1, True, 2, 8, 8),      # {3,1,1,0} odd C_in
    (8, 12, 3, 1, 1, 0, 1, 4, True, 1, 7, 9),      # 3x1
    (12, 8, 1, 3, 2, 0, 1, 2, False, 2, 9, 7),     # 1x3, stride 2
    (17, 34, 3, 3, 1, 1, 1, 17, True, 1, 7, 9),    # depthwise, channel multiplier 2
    (4, 4, 3, 3, 1, 1, 1, 1, True, 2, 1, 1),       # 1x1 map, 3x3 kernel
    (4, 8, 7, 7, 1, 3, 1, 1, True, 1, 8, 8),       # 7x7 dense, even map
]

# (kernel, stride, padding, batch, channels, H, W, negative_only)
POOL_CASES = [
    (3, 2, 1, 1, 4, 7, 9, False),    # SKNet stem pool, odd non-square
    (3, 2, 1, 2, 3, 8, 8, False),    # SKNet stem pool, even
    (2, 2, 0, 1, 4, 9, 7, False),
    (3, 1, 1, 1, 2, 7, 9, False),
    (3, 2, 1, 2, 3, 13, 11, True),   # all inputs < 0: padding must act as -inf, not 0
    (3, 2, 1, 1, 2, 1, 1, True),     # 1x1 map, all negative
]


def sk_name(c):
    m, g, ci, co, r, l, s, h, w, n, kind = c
    ch = "c%d" % ci if ci == co else "c%dto%d" % (ci, co)
    return "m%d_g%d_%s_r%d_l%d_s%d_%dx%d_n%d_%s" % (m, g, ch, r, l, s, h, w, n, kind)


def conv_name(c):
    ci, co, kh, kw, s, p, d, g, b, n, h, w = c
    return "k%dx%d_s%d_p%d_d%d_g%d_c%dto%d_%dx%d_n%d_%s" % (
        kh, kw, s, p, d, g, ci, co, h, w, n, "bias" if b else "nobias")


def pool_name(c):
    k, s, p, n, ch, h, w, neg = c
    return "k%d_s%d_p%d_c%d_%dx%d_n%d%s" % (k, s, p, ch, h, w, n, "_neg" if neg else "")


# ----------------------------------------------------------------------------- self-check

def reference_sk(mod, x):
    """SKConv written out with torch.nn.functional from the raw state_dict (no submodules)."""
    sd = mod.state_dict()
    feats = []
    for m in range(mod.num_paths):
        k, dil, pad = branch_geometry(m, mod.branch_kernels)
        w = sd["paths.%d.conv.weight" % m]
        assert tuple(w.shape[2:]) == (k, k)
        y = F.conv2d(x, w, None, stride=mod.stride, padding=pad, dilation=dil, groups=mod.groups)
        y = F.batch_norm(y, sd["paths.%d.bn.running_mean" % m], sd["paths.%d.bn.running_var" % m],
                         sd["paths.%d.bn.weight" % m], sd["paths.%d.bn.bias" % m],
                         training=False, eps=BN_EPS)
        feats.append(F.relu(y))
    u = feats[0]
    for f in feats[1:]:
        u = u + f
    n, c = u.shape[0], u.shape[1]
    s = u.sum(dim=(2, 3)) / (u.shape[2] * u.shape[3])                      # [N, C]
    z = s @ sd["attn.fc_reduce.weight"].flatten(1).t()                      # [N, d]
    z = (z - sd["attn.bn.running_mean"]) / torch.sqrt(sd["attn.bn.running_var"] + BN_EPS)
    z = F.relu(z * sd["attn.bn.weight"] + sd["attn.bn.bias"])
    logits = z @ sd["attn.fc_select.weight"].flatten(1).t()                 # [N, M*C]
    a = torch.empty(n, mod.num_paths, c, dtype=x.dtype)
    for m in range(mod.num_paths):
        a[:, m, :] = logits[:, m * c:(m + 1) * c]
    # explicit softmax over the path axis
    e = torch.exp(a - a.max(dim=1, keepdim=True).values)
    a = e / e.sum(dim=1, keepdim=True)
    v = torch.zeros_like(u)
    for m in range(mod.num_paths):
        v = v + a[:, m, :, None, None] * feats[m]
    return v, a


def self_check():
    """Compare SKConv against the functional reference, and the safetensors round trip."""
    print("self-check:")
    checks = [
        (2, 4, 16, 24, 2, 8, 1, 7, 9, 2, "dilated"),
        (3, 32, 64, 64, 16, 32, 2, 13, 11, 2, "dilated"),
        (3, 8, 16, 16, 4, 4, 1, 9, 7, 1, "full"),
    ]
    for c in checks:
        m, g, ci, co, r, l, s, h, w, n, kind = c
        gen = torch.Generator().manual_seed(12345)
        mod = randomize_(SKConv(ci, co, m, g, r, l, s, kind), gen).eval().double()
        x = torch.randn(n, ci, h, w, generator=gen, dtype=torch.float32).double()
        with torch.no_grad():
            v, a = mod(x)
            rv, ra = reference_sk(mod, x)
        keys = list(mod.state_dict().keys())
        expect = []
        for i in range(m):
            expect.append("paths.%d.conv.weight" % i)
            expect += ["paths.%d.bn.%s" % (i, t) for t in
                       ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
        expect += ["attn.fc_reduce.weight"]
        expect += ["attn.bn.%s" % t for t in
                   ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
        expect += ["attn.fc_select.weight"]
        assert keys == expect, keys
        ho, wo = out_size(h, 3, s, 1), out_size(w, 3, s, 1)
        assert v.shape == (n, co, ho, wo), v.shape
        assert a.shape == (n, m, co), a.shape
        dv = (v - rv).abs().max().item()
        da = (a - ra).abs().max().item()
        assert dv < 1e-12 and da < 1e-12, (dv, da)
        assert torch.allclose(a.sum(dim=1), torch.ones(n, co, dtype=a.dtype))
        # non-trivial: BN is active, attention is not uniform, outputs are not mostly zero
        spread = (a.max(dim=1).values - a.min(dim=1).values).mean().item()
        assert spread > 0.2, spread
        assert (v > 0).double().mean().item() > 0.3
        print("  %-40s max|dV|=%.1e max|dA|=%.1e attn spread=%.2f  ok"
              % (sk_name(c), dv, da, spread))
    # safetensors round trip incl. F64 / I64 / scalar / empty
    import tempfile
    t = {
        "a": torch.randn(2, 3, 4, 5),
        "b": torch.randn(7, dtype=torch.float64),
        "c": torch.arange(-3, 9, dtype=torch.int64).view(3, 4),
        "scalar": torch.tensor(1.5),
        "empty": torch.zeros(0, 3),
    }
    with tempfile.TemporaryDirectory() as td:
        p = os.path.join(td, "x.safetensors")
        size = write_safetensors(p, t, {"k": "v", "ü": "é"})
        assert size == os.path.getsize(p)
        with open(p, "rb") as f:
            head = f.read(8)
        assert int.from_bytes(head, "little") % 8 == 0
        r, meta = read_safetensors(p)
        assert meta == {"k": "v", "ü": "é"} and list(r) == list(t)
        for k in t:
            assert r[k].dtype == t[k].dtype and torch.equal(r[k], t[k]), k
    print("  safetensors round trip (F32/F64/I64/scalar/empty)  ok")


# ----------------------------------------------------------------------------- generation

def save(path, tensors, meta, written):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for k, v in tensors.items():
        assert v.dtype == torch.float32, (path, k, v.dtype)
    size = write_safetensors(path, tensors, meta)
    back, bmeta = read_safetensors(path)
    assert bmeta == meta, path
    assert list(back) == list(tensors), path
    for k, v in tensors.items():
        assert back[k].shape == v.shape and torch.equal(back[k], v.contiguous()), (path, k)
    assert size == os.path.getsize(path)
    rel = os.path.relpath(path, ROOT)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    print("  %-78s %8d B  sha256:%s" % (rel, size, digest))
    written.append((rel, size))


def gen_sk(written):
    print("sk_conv:")
    names = set()
    worst = 0.0
    for c in SK_CASES:
        m, g, ci, co, r, l, s, h, w, n, kind = c
        name = sk_name(c)
        assert name not in names
        names.add(name)
        seed = case_seed("sk_conv", name)
        gen = torch.Generator().manual_seed(seed)
        mod = randomize_(SKConv(ci, co, m, g, r, l, s, kind), gen).eval()
        x = torch.randn(n, ci, h, w, generator=gen, dtype=torch.float32)
        with torch.no_grad():
            v32, a32 = mod(x)                           # float32, what users would compare to
            mod64 = mod.double()                        # same values, float64 compute
            v64, a64 = mod64(x.double())
            rv, ra = reference_sk(mod64, x.double())    # cross-check every case too
        assert (v64 - rv).abs().max().item() < 1e-12 and (a64 - ra).abs().max().item() < 1e-12
        v, a = v64.float(), a64.float()
        worst = max(worst, (v32 - v).abs().max().item(), (a32 - a).abs().max().item())
        ho, wo = out_size(h, 3, s, 1), out_size(w, 3, s, 1)
        assert v.shape == (n, co, ho, wo) and a.shape == (n, m, co)
        tensors = {"input": x}
        for k, t in mod64.state_dict().items():
            if k.endswith("num_batches_tracked"):
                continue
            t32 = t.float()
            assert torch.equal(t32.double(), t), k      # float32-representable
            tensors[k] = t32
        tensors["output"] = v.contiguous()
        tensors["attention"] = a.contiguous()
        meta = {
            "in_channels": str(ci), "out_channels": str(co), "paths": str(m), "groups": str(g),
            "reduction": str(r), "min_width": str(l), "stride": str(s), "branch_kernels": kind,
            "batch": str(n), "height": str(h), "width": str(w),
            "attn_width": str(attn_width(co, r, l)), "seed": str(seed), "generator": GENERATOR,
        }
        save(os.path.join(DATA, "sk_conv", name + ".safetensors"), tensors, meta, written)
    print("  (max |float32 module - float64 golden| over sk_conv cases: %.2e)" % worst)


def gen_conv(written):
    print("conv2d:")
    for c in CONV_CASES:
        ci, co, kh, kw, s, p, d, g, b, n, h, w = c
        name = conv_name(c)
        seed = case_seed("conv2d", name)
        gen = torch.Generator().manual_seed(seed)
        conv = nn.Conv2d(ci, co, (kh, kw), stride=s, padding=p, dilation=d, groups=g, bias=b)
        randomize_(conv, gen)
        x = torch.randn(n, ci, h, w, generator=gen, dtype=torch.float32)
        with torch.no_grad():
            y = conv.double()(x.double()).float()
        assert y.shape == (n, co, out_size(h, kh, s, p, d), out_size(w, kw, s, p, d))
        assert y.numel() > 0
        tensors = {"input": x, "weight": conv.weight.detach().float().contiguous()}
        if b:
            tensors["bias"] = conv.bias.detach().float().contiguous()
        tensors["output"] = y.contiguous()
        meta = {
            "in_channels": str(ci), "out_channels": str(co), "kernel_h": str(kh),
            "kernel_w": str(kw), "stride": str(s), "padding": str(p), "dilation": str(d),
            "groups": str(g), "bias": "1" if b else "0", "batch": str(n), "height": str(h),
            "width": str(w), "seed": str(seed), "generator": GENERATOR,
        }
        save(os.path.join(DATA, "conv2d", name + ".safetensors"), tensors, meta, written)


def gen_pool(written):
    print("max_pool2d:")
    for c in POOL_CASES:
        k, s, p, n, ch, h, w, neg = c
        name = pool_name(c)
        seed = case_seed("max_pool2d", name)
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(n, ch, h, w, generator=gen, dtype=torch.float32)
        if neg:
            x = -(x.abs() + 0.25)
            assert (x < 0).all()
        y = F.max_pool2d(x, k, stride=s, padding=p)
        # independent check: pad with -inf, take the window max by hand
        xp = F.pad(x, (p, p, p, p), value=-math.inf)
        ho, wo = out_size(h, k, s, p), out_size(w, k, s, p)
        ref = torch.full((n, ch, ho, wo), -math.inf)
        for i in range(k):
            for j in range(k):
                ref = torch.maximum(ref, xp[:, :, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s])
        assert torch.equal(y, ref), name
        if neg:
            assert (y < 0).all()
        meta = {
            "kernel": str(k), "stride": str(s), "padding": str(p), "batch": str(n),
            "channels": str(ch), "height": str(h), "width": str(w), "seed": str(seed),
            "generator": GENERATOR,
        }
        save(os.path.join(DATA, "max_pool2d", name + ".safetensors"),
             {"input": x, "output": y.contiguous()}, meta, written)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--self-check", action="store_true", help="only run the self-check")
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)   # keep float64 reduction order, hence the float32 bits, stable

    self_check()
    if args.self_check:
        return

    written = []
    for sub in ("sk_conv", "conv2d", "max_pool2d"):
        d = os.path.join(DATA, sub)
        if os.path.isdir(d):       # drop stale fixtures from renamed/removed cases
            for f in os.listdir(d):
                if f.endswith(".safetensors"):
                    os.remove(os.path.join(d, f))
    gen_sk(written)
    gen_conv(written)
    gen_pool(written)
    total = sum(s for _, s in written)
    print("wrote %d files, total %d bytes (%.2f MB)" % (len(written), total, total / 1e6))
    assert total < SIZE_BUDGET, "fixtures exceed the %d byte budget" % SIZE_BUDGET


if __name__ == "__main__":
    main()
