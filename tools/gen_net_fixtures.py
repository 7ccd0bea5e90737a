#!/usr/bin/python3
"""Generate sknet's whole-network (SKNet, ResNeXt) golden fixtures with PyTorch.

Run from the repository root:

    /usr/bin/python3 tools/gen_net_fixtures.py               # self-check, then (re)write fixtures
    /usr/bin/python3 tools/gen_net_fixtures.py --self-check  # only the self-check

Writes tests/data/sknet/<case>.safetensors (the state_dict, timm names, incl. the I64
`num_batches_tracked` scalars), <case>.input.npy, <case>.logits.npy and
<case>.attention.safetensors, and tests/data/resnext/<case>.safetensors, .input.npy and
.logits.npy (the paper's ResNeXt baseline, tools/resnext_torch.py). Weights and inputs are float32 drawn from fixed seeds; expected
outputs are computed in float64 from those exact float32 values and rounded to float32 once.
"""

import argparse
import hashlib
import os
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sk_torch import (BN_EPS, SKNet, SKNetConfig, attn_width, path_geometry,  # noqa: E402
                      randomize_net_, read_safetensors, sknet_config, write_safetensors)
from resnext_torch import ResNeXt, resnext_config, resnext_metadata  # noqa: E402

GENERATOR = "tools/gen_net_fixtures.py"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "sknet")
SIZE_BUDGET = 1_500_000
SKNET50_PARAMS = 27_479_784      # timm skresnext50_32x4d, parameters only (no BN buffers)
RESNEXT_OUT = os.path.join(ROOT, "tests", "data", "resnext")
RESNEXT_SIZE_BUDGET = 300_000
RESNEXT50_PARAMS = 25_028_904    # timm / torchvision resnext50_32x4d, parameters only

# Reduced widths. The SK convolutions have widths 8, 16, 32, 64 (floor(planes * base_width / 64)
# * groups), groups 4 (2..16 channels per group), d = max(C // 4, 8) = 8, 8, 8, 16 (both d = L
# and d = C / r); unit outputs 4 * planes = 16, 32, 64, 128; stem 8 channels, so layer1.0 has
# a stride-1 projection shortcut like the real network (stem 64 -> 256).
# (planes (8, 16, 32, 64) with base_width 16 gives the same SK widths but doubles the 1x1
# convs: 2.3 MB for the three cases, over the 1.5 MB budget.)
_TINY = dict(planes=(4, 8, 16, 32), base_width=32, groups=4, reduction=4, min_width=8,
             stem_width=8, num_classes=10, in_chans=3)

# name -> (config, batch, H, W)
CASES = {
    "tiny_m2": (SKNetConfig(layers=(2, 2, 2, 2), paths=2, stem="imagenet", **_TINY), 2, 37, 45),
    "tiny_m3": (SKNetConfig(layers=(2, 2, 2, 2), paths=3, stem="imagenet", **_TINY), 2, 37, 45),
    "small_stem_m2": (SKNetConfig(layers=(1, 1, 1, 1), paths=2, stem="small", strides=(1, 2, 2, 2),
                                  **_TINY), 2, 19, 23),
}
# ResNeXt: the same reduced widths (grouped 3x3 convolutions of 8, 16, 32, 64 channels in 4
# groups); one unit in the last two stages, and two stages for the small stem, keep both cases within
# 300 KB (the SKNet cases' 2,2,2,2 alone would take 340 KB).
# name -> (config, batch, H, W)
_RESNEXT_TINY = {k: v for k, v in _TINY.items() if k not in ("reduction", "min_width")}
RESNEXT_CASES = {
    "tiny": (resnext_config("resnext26", layers=(2, 2, 1, 1), stem="imagenet", **_RESNEXT_TINY),
             2, 37, 45),
    "small_stem": (resnext_config("resnext26", **dict(_RESNEXT_TINY, layers=(1, 1), planes=(4, 8), strides=(1, 2),
                                                      stem="small")), 2, 19, 23),
}
CALIB_BATCH = 8   # BN calibration batch (see randomize_sknet_), at the case's H x W


def case_seed(name, family="sknet"):
    return zlib.crc32(("%s/%s" % (family, name)).encode("utf-8")) & 0x7FFFFFFF


def builder(net_class):
    """build(cfg, seed, batch, H, W) -> the randomized float32 net_class(cfg) (eval mode,
    ``randomize_net_`` calibrated at H x W) and its float32 input, from one generator."""
    def build(cfg, seed, batch, h, w):
        gen = torch.Generator().manual_seed(seed)
        net = randomize_net_(net_class(cfg), gen, calib_shape=(CALIB_BATCH, h, w)).eval()
        x = torch.randn(batch, cfg.in_chans, h, w, generator=gen, dtype=torch.float32)
        return net, x
    return build


build = builder(SKNet)
build_resnext = builder(ResNeXt)


# ----------------------------------------------------------------------------- self-check

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def bn_keys(p):
    """The state_dict keys of a BatchNorm2d at prefix p."""
    return ["%s.%s" % (p, t) for t in BN_KEYS]


def sk_keys(p, paths, attention=True):
    """The state_dict keys of an SK convolution at prefix p (no attn.* without attention)."""
    keys = []
    for m in range(paths):
        keys += ["%s.paths.%d.conv.weight" % (p, m)] + bn_keys("%s.paths.%d.bn" % (p, m))
    if not attention:
        return keys
    return keys + ["%s.attn.fc_reduce.weight" % p] + bn_keys("%s.attn.bn" % p) + [
        "%s.attn.fc_select.weight" % p]


def downsample_keys(p, avg_down=False):
    """The keys of unit p's projection: downsample.{0,1}, or with avg_down downsample.{1,2} (the
    pool at index 0 has no parameters)."""
    if avg_down:
        return ["%s.downsample.1.weight" % p] + bn_keys("%s.downsample.2" % p)
    return ["%s.downsample.0.weight" % p] + bn_keys("%s.downsample.1" % p)


def expected_keys(cfg):
    """timm skresnext50_32x4d-style state_dict keys, in order, written out from the spec."""
    keys = ["conv1.weight"] + bn_keys("bn1")
    inplanes = cfg.stem_width
    for s, (n, planes, stride) in enumerate(zip(cfg.layers, cfg.planes, cfg.strides), 1):
        for u in range(n):
            p = "layer%d.%d" % (s, u)
            keys += ["%s.conv1.conv.weight" % p] + bn_keys("%s.conv1.bn" % p)
            keys += sk_keys(p + ".conv2", cfg.paths)
            keys += ["%s.conv3.conv.weight" % p] + bn_keys("%s.conv3.bn" % p)
            if u == 0 and (stride != 1 or inplanes != 4 * planes):
                keys += downsample_keys(p)
            inplanes = 4 * planes
    return keys + ["fc.weight", "fc.bias"]


def bn_fn(sd):
    """bn(t, prefix): inference BatchNorm with the statistics and affine terms at `prefix` in sd."""
    def bn(t, p):
        return F.batch_norm(t, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"],
                            sd[p + ".bias"], training=False, eps=BN_EPS)
    return bn


def functional_stem(sd, stem, x):
    """The stem: "imagenet" 7x7/2 conv, "small" 3x3/1 conv, or timm's "deep" three 3x3 convs
    (conv1.0 stride 2, BN conv1.1, ReLU, conv1.3, BN conv1.4, ReLU, conv1.6); then BN bn1 + ReLU
    and, except for "small", the 3x3/2 max pool (padding 1)."""
    bn = bn_fn(sd)
    if stem == "deep":
        y = F.relu(bn(F.conv2d(x, sd["conv1.0.weight"], stride=2, padding=1), "conv1.1"))
        y = F.relu(bn(F.conv2d(y, sd["conv1.3.weight"], padding=1), "conv1.4"))
        y = F.conv2d(y, sd["conv1.6.weight"], padding=1)
    elif stem == "imagenet":
        y = F.conv2d(x, sd["conv1.weight"], stride=2, padding=3)
    else:
        y = F.conv2d(x, sd["conv1.weight"], stride=1, padding=1)
    y = F.relu(bn(y, "bn1"))
    return y if stem == "small" else F.max_pool2d(y, 3, stride=2, padding=1)


def functional_sk(sd, p, h, paths, groups, stride, branch_kernels, width, split_input=False,
                  ablation=None):
    """The SK convolution with keys at prefix p on h: returns (V, attention [N, M, C]).
    `width` is the expected attention width d; with `split_input` path m reads only the input
    channels [m*Cin/M, (m+1)*Cin/M). `ablation`: sk_torch.sk_ablation_options of the config
    (per-path kernels, dilations, groups; aggregation "sum" gives V = sum_m U_m and attention 1)."""
    bn = bn_fn(sd)
    ab = ablation or {}
    path_g = tuple(ab.get("path_groups", ())) or (groups,) * paths
    cin = h.shape[1]
    c = sd[p + ".paths.0.conv.weight"].shape[0]
    feats = []
    for m in range(paths):
        k, dil, pad = path_geometry(m, branch_kernels, ab.get("path_kernels", ()),
                                    ab.get("path_dilations", ()))
        wgt = sd["%s.paths.%d.conv.weight" % (p, m)]
        assert wgt.shape[2:] == (k, k)
        hm = h[:, m * cin // paths:(m + 1) * cin // paths] if split_input else h
        assert wgt.shape[1] * path_g[m] == hm.shape[1], (p, m, wgt.shape, path_g[m])
        feats.append(F.relu(bn(F.conv2d(hm, wgt, stride=stride, padding=pad, dilation=dil,
                                        groups=path_g[m]), "%s.paths.%d.bn" % (p, m))))
    uu = sum(feats)
    if ab.get("aggregation", "attention") == "sum":
        assert p + ".attn.fc_reduce.weight" not in sd, p
        return uu, torch.ones(h.shape[0], paths, c, dtype=h.dtype)
    sv = uu.sum(dim=(2, 3)) / (uu.shape[2] * uu.shape[3])
    wr = sd[p + ".attn.fc_reduce.weight"]
    assert wr.shape[0] == width, (p, wr.shape, width)
    z = F.relu(bn((sv @ wr.flatten(1).t())[:, :, None, None], p + ".attn.bn"))
    lg = z.flatten(1) @ sd[p + ".attn.fc_select.weight"].flatten(1).t()
    lg = torch.stack([lg[:, m * c:(m + 1) * c] for m in range(paths)], dim=1)
    e = torch.exp(lg - lg.max(dim=1, keepdim=True).values)
    a = e / e.sum(dim=1, keepdim=True)
    return sum(a[:, m, :, None, None] * feats[m] for m in range(paths)), a


def avg_pool_2x2_ceil(y):
    """2x2 average pool, stride 2, ceil mode without padding: an odd last row / column forms
    partial windows, averaged over their valid elements only (count_include_pad=False)."""
    ph, pw = y.shape[2] % 2, y.shape[3] % 2

    def window_sums(t):
        t = F.pad(t, (0, pw, 0, ph))
        n, c, h, w = t.shape
        return t.reshape(n, c, h // 2, 2, w // 2, 2).sum(dim=(3, 5))

    return window_sums(y) / window_sums(torch.ones_like(y[:1, :1]))


def functional_shortcut(sd, p, y, stride, avg_down=False):
    """Unit p's shortcut on its input y: the identity without projection keys, else the 1x1
    conv (with the stride) + BN, or with avg_down the 2x2 average pool (stride 2; none at
    stride 1), a 1x1 conv and BN."""
    bn = bn_fn(sd)
    if avg_down and p + ".downsample.1.weight" in sd:
        assert p + ".downsample.0.weight" not in sd and stride in (1, 2)
        t = avg_pool_2x2_ceil(y) if stride == 2 else y
        return bn(F.conv2d(t, sd[p + ".downsample.1.weight"]), p + ".downsample.2")
    if p + ".downsample.0.weight" in sd:
        return bn(F.conv2d(y, sd[p + ".downsample.0.weight"], stride=stride), p + ".downsample.1")
    assert not any(k.startswith(p + ".downsample.") for k in sd)
    return y


def functional_head(sd, y):
    """Global average pool, then fc."""
    feat = y.sum(dim=(2, 3)) / (y.shape[2] * y.shape[3])
    return feat @ sd["fc.weight"].t() + sd["fc.bias"]


def functional_sknet(sd, cfg, x):
    """SKNet written out with torch.nn.functional from the raw state_dict and the config only.
    Returns (logits, {unit: attention})."""
    bn = bn_fn(sd)
    y = functional_stem(sd, cfg.stem, x)
    att = {}
    for s, (n, stride) in enumerate(zip(cfg.layers, cfg.strides), 1):
        for u in range(n):
            p = "layer%d.%d" % (s, u)
            st = stride if u == 0 else 1
            h = F.relu(bn(F.conv2d(y, sd[p + ".conv1.conv.weight"]), p + ".conv1.bn"))
            c = h.shape[1]
            v, att[p] = functional_sk(sd, p + ".conv2", h, cfg.paths, cfg.groups, st,
                                      cfg.branch_kernels,
                                      attn_width(c, cfg.reduction, cfg.min_width))
            out = bn(F.conv2d(v, sd[p + ".conv3.conv.weight"]), p + ".conv3.bn")
            y = F.relu(out + functional_shortcut(sd, p, y, st))
    return functional_head(sd, y), att


def expected_resnext_keys(cfg):
    """timm resnext50_32x4d-style state_dict keys, in order, written out from the spec."""
    keys = ["conv1.weight"] + bn_keys("bn1")
    inplanes = cfg.stem_width
    for s, (n, planes, stride) in enumerate(zip(cfg.layers, cfg.planes, cfg.strides), 1):
        for u in range(n):
            p = "layer%d.%d" % (s, u)
            for i in (1, 2, 3):
                keys += ["%s.conv%d.weight" % (p, i)] + bn_keys("%s.bn%d" % (p, i))
            if u == 0 and (stride != 1 or inplanes != 4 * planes):
                keys += downsample_keys(p)
            inplanes = 4 * planes
    return keys + ["fc.weight", "fc.bias"]


def functional_resnext(sd, cfg, x):
    """ResNeXt written out with torch.nn.functional from the raw state_dict and the config only."""
    bn = bn_fn(sd)
    y = functional_stem(sd, cfg.stem, x)
    for s, (n, stride) in enumerate(zip(cfg.layers, cfg.strides), 1):
        for u in range(n):
            p = "layer%d.%d" % (s, u)
            st = stride if u == 0 else 1
            h = F.relu(bn(F.conv2d(y, sd[p + ".conv1.weight"]), p + ".bn1"))
            wgt = sd[p + ".conv2.weight"]
            assert wgt.shape[1] * cfg.groups == wgt.shape[0] and wgt.shape[2:] == (3, 3)
            h = F.relu(bn(F.conv2d(h, wgt, stride=st, padding=1, groups=cfg.groups), p + ".bn2"))
            out = bn(F.conv2d(h, sd[p + ".conv3.weight"]), p + ".bn3")
            y = F.relu(out + functional_shortcut(sd, p, y, st))
    return functional_head(sd, y)


def resnext_self_check():
    counts = {}
    for arch in ("resnext26", "resnext50", "resnext101"):
        cfg = resnext_config(arch)
        net = ResNeXt(cfg)
        counts[arch] = sum(p.numel() for p in net.parameters())
        assert list(net.state_dict()) == expected_resnext_keys(cfg), arch
    print("  parameters (no buffers): " + ", ".join(
        "%s %s" % (a, format(c, ",")) for a, c in counts.items()))
    assert counts["resnext50"] == RESNEXT50_PARAMS, counts["resnext50"]
    print("  resnext50 == timm resnext50_32x4d (%s), state_dict keys as timm  ok"
          % format(RESNEXT50_PARAMS, ","))
    check_cases("resnext/", RESNEXT_CASES, build_resnext, expected_resnext_keys,
                lambda sd, cfg, x: (functional_resnext(sd, cfg, x), {}))


def check_cases(label, cases, build_net, keys, functional):
    """Self-check of every case: build_net(cfg, 777, batch, H, W) -> (net, x) has the state_dict
    keys keys(cfg), and in float64 its logits and attention equal functional(sd, cfg, x) ->
    (logits, {unit: attention})."""
    for name, (cfg, n, h, w) in cases.items():
        net, x = build_net(cfg, 777, n, h, w)
        assert list(net.state_dict()) == keys(cfg), name
        with torch.no_grad():
            net64 = net.double()
            y = net64(x.double())
            ry, ra = functional(net64.state_dict(), cfg, x.double())
        dy = (y - ry).abs().max().item()
        assert list(ra) == list(net64.attention)
        da = max([(net64.attention[k] - ra[k]).abs().max().item() for k in ra] or [0.0])
        assert dy < 1e-10 and da < 1e-12, (dy, da)
        print("  %-24s module vs functional: max|dlogit|=%.1e max|dA|=%.1e  ok"
              % (label + name, dy, da))


def self_check():
    print("self-check:")
    counts = {}
    for arch in ("sknet26", "sknet50", "sknet101"):
        for m in (2, 3):
            cfg = sknet_config(arch, paths=m)
            net = SKNet(cfg)
            counts[(arch, m)] = sum(p.numel() for p in net.parameters())
            assert list(net.state_dict()) == expected_keys(cfg), arch
    print("  parameters (no buffers): " + ", ".join(
        "%s M=%d %s" % (a, m, format(c, ",")) for (a, m), c in counts.items()))
    assert counts[("sknet50", 2)] == SKNET50_PARAMS, counts[("sknet50", 2)]
    print("  sknet50 M=2 == timm skresnext50_32x4d (%s), state_dict keys as timm  ok"
          % format(SKNET50_PARAMS, ","))
    check_cases("", CASES, build, expected_keys, functional_sknet)
    resnext_self_check()


# ----------------------------------------------------------------------------- generation

def record(path, written):
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    rel = os.path.relpath(path, ROOT)
    print("  %-48s %8d B  sha256:%s" % (rel, size, digest))
    written.append((rel, size))


def evaluate(net, x, functional):
    """Run the randomized float32 `net` on `x` in float32 and, converted, in float64; check the
    float64 result against `functional(state_dict, x)` -> (logits, {unit: attention}) and that
    every parameter is float32-representable. Returns (logits32, attention32, state_dict32,
    golden logits, golden attention): the goldens are the float64 results rounded once."""
    with torch.no_grad():
        y32 = net(x)                                   # float32 module (what users compare to)
        a32 = dict(getattr(net, "attention", {}))
        sd32 = {k: v.clone() for k, v in net.state_dict().items()}
        net64 = net.double()
        y64 = net64(x.double())
        a64 = dict(getattr(net64, "attention", {}))
        ry, ra = functional(net64.state_dict(), x.double())
    assert (y64 - ry).abs().max().item() < 1e-10
    assert list(ra) == list(a64)
    assert all((a64[k] - ra[k]).abs().max().item() < 1e-12 for k in ra)
    for k, v in net64.state_dict().items():            # float32-representable
        if v.is_floating_point():
            assert torch.equal(sd32[k].double(), v), k
    logits = y64.float()
    assert logits.shape == (x.shape[0], net.fc.out_features)
    assert torch.isfinite(logits).all()
    return y32, a32, sd32, logits, {k: v.float().contiguous() for k, v in a64.items()}


def write_checked(path, tensors, meta, written):
    """write_safetensors, then read the file back and compare, then record it."""
    write_safetensors(path, tensors, meta)
    back, bmeta = read_safetensors(path)
    assert bmeta == meta and list(back) == list(tensors)
    assert all(torch.equal(back[k], tensors[k]) for k in tensors)
    record(path, written)


def write_npy(path, t, written):
    np.save(path, t.numpy().astype("<f4"))
    assert np.array_equal(np.load(path), t.numpy())
    record(path, written)


def write_case(out, name, sd32, meta, x, logits, written, att=None, ameta=None):
    """<name>.safetensors (the state_dict: F32, I64 rank-0 num_batches_tracked), <name>.input.npy,
    <name>.logits.npy and, with `att`, <name>.attention.safetensors, each checked on re-reading."""
    sd = {k: v.contiguous() for k, v in sd32.items()}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            assert v.dtype == torch.int64 and v.dim() == 0, k
        else:
            assert v.dtype == torch.float32, k
    write_checked(os.path.join(out, name + ".safetensors"), sd, meta, written)
    write_npy(os.path.join(out, name + ".input.npy"), x, written)
    write_npy(os.path.join(out, name + ".logits.npy"), logits, written)
    if att is not None:
        write_checked(os.path.join(out, name + ".attention.safetensors"), att, ameta, written)


def attention_stats(att):
    """(smallest per-unit mean over channels of max - min over the paths, share of weights < 0.01)."""
    allw = torch.cat([a.flatten() for a in att.values()])
    spread = min((a.max(dim=1).values - a.min(dim=1).values).mean().item() for a in att.values())
    return spread, (allw < 0.01).double().mean().item()


def run_metadata(n, h, w, seed, generator=GENERATOR):
    return {"batch": str(n), "height": str(h), "width": str(w), "seed": str(seed),
            "generator": generator}


def gen_case(name, cfg, n, h, w, written):
    seed = case_seed(name)
    net, x = build(cfg, seed, n, h, w)
    y32, a32, sd32, logits, att = evaluate(net, x, lambda sd, t: functional_sknet(sd, cfg, t))
    # stats: how different a float32 implementation is allowed to be, and how non-trivial it is
    scale = logits.abs().max().item()
    dl = (y32 - logits).abs().max().item()
    dat = max((a32[k] - att[k]).abs().max().item() for k in att)
    spread, small = attention_stats(att)
    print("  %s: logits max|.|=%.3f std=%.3f; float32 module vs golden: logits %.1e (rel %.1e), "
          "attention %.1e; min unit attention spread %.2f, share of weights < 0.01: %.3f"
          % (name, scale, logits.std().item(), dl, dl / scale, dat, spread, small))
    assert scale < 20 and spread > 0.1, (scale, spread)

    meta = dict(cfg.metadata())
    meta.update(run_metadata(n, h, w, seed))
    ameta = {"paths": str(cfg.paths), "batch": str(n), "seed": str(seed), "generator": GENERATOR}
    write_case(OUT, name, sd32, meta, x, logits, written, att, ameta)


def gen_resnext_case(name, cfg, n, h, w, written):
    seed = case_seed(name, "resnext")
    net, x = build_resnext(cfg, seed, n, h, w)
    y32, _, sd32, logits, _ = evaluate(net, x, lambda sd, t: (functional_resnext(sd, cfg, t), {}))
    scale = logits.abs().max().item()
    dl = (y32 - logits).abs().max().item()
    # the two images and the classes must differ clearly, or a wrong network could still match
    spread = (logits[0] - logits[1]).abs().max().item()
    print("  resnext/%s: logits max|.|=%.3f std=%.3f; float32 module vs golden: %.1e (rel %.1e); "
          "max|image 0 - image 1| %.3f" % (name, scale, logits.std().item(), dl, dl / scale, spread))
    assert 0.5 < scale < 20 and spread > 0.05 * scale, (scale, spread)

    meta = resnext_metadata(cfg)
    meta.update(run_metadata(n, h, w, seed))
    write_case(RESNEXT_OUT, name, sd32, meta, x, logits, written)


def write_cases(label, out, cases, gen, budget):
    """Drop `out`'s stale fixtures (from renamed / removed cases), write every case with
    gen(name, cfg, batch, H, W, written) and check the total size against `budget`."""
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        if f.endswith(".safetensors") or f.endswith(".npy"):
            os.remove(os.path.join(out, f))
    written = []
    print(label + ":")
    for name, (cfg, n, h, w) in cases.items():
        gen(name, cfg, n, h, w, written)
    total = sum(s for _, s in written)
    print("wrote %d files, total %d bytes (%.2f MB)" % (len(written), total, total / 1e6))
    assert total < budget, "fixtures exceed the %d byte budget" % budget


def setup_torch():
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


def generator_main(doc, check, write):
    """The command line of a fixture generator: check() (the self-check), then write() unless
    --self-check; torch set up deterministic and single-threaded first."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[1])
    ap.add_argument("--self-check", action="store_true", help="only run the self-check")
    args = ap.parse_args()
    setup_torch()
    check()
    if not args.self_check:
        write()


def main():
    generator_main(__doc__, self_check, lambda: (
        write_cases("sknet", OUT, CASES, gen_case, SIZE_BUDGET),
        write_cases("resnext", RESNEXT_OUT, RESNEXT_CASES, gen_resnext_case, RESNEXT_SIZE_BUDGET)))


if __name__ == "__main__":
    main()
