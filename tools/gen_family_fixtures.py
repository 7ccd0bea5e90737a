#!/usr/bin/python3
"""Generate sknet's golden fixtures for timm's other SK families and SE-ResNeXt with PyTorch.

Run from the repository root:

    /usr/bin/python3 tools/gen_family_fixtures.py               # self-check, then (re)write fixtures
    /usr/bin/python3 tools/gen_family_fixtures.py --self-check  # only the self-check
    /usr/bin/python3 tools/gen_family_fixtures.py --counts      # full-size table -> tools/family_counts.json

Writes tests/data/families/<case>.safetensors (the state_dict with timm's names, incl. the I64
`num_batches_tracked` scalars; the architecture in the metadata), <case>.input.npy,
<case>.logits.npy and, for SK families, <case>.attention.safetensors (one [N, M, C] tensor per
SK unit). The networks are tools/families_torch.py's reduced copies of timm's skresnet18,
skresnet34, skresnet50, skresnet50d, seresnext50_32x4d and of SKNet-101 with the official
per-stage attention widths. Weights and inputs are float32 drawn from fixed seeds; expected
outputs are computed in float64 from those exact float32 values and rounded to float32 once.
"""

import argparse
import json
import os
import sys
from collections import OrderedDict
from fractions import Fraction

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from families_torch import (FULL_SIZE, INPUT_SIZE, FamilyConfig, FamilyNet,  # noqa: E402
                            count_params_macs, make_divisible)
from gen_net_fixtures import (ROOT, attention_stats, bn_fn, bn_keys, builder,  # noqa: E402
                              case_seed, check_cases, downsample_keys, evaluate, expected_keys, expected_resnext_keys,
                              functional_head, functional_shortcut, functional_sk,
                              functional_stem, run_metadata, setup_torch, sk_keys, write_case,
                              write_cases)
from resnext_torch import ResNeXt, resnext_config  # noqa: E402
from sk_torch import SEModule, SKNet, sk_ablation_options, sknet_config  # noqa: E402

GENERATOR = "tools/gen_family_fixtures.py"
OUT = os.path.join(ROOT, "tests", "data", "families")
COUNTS = os.path.join(ROOT, "tools", "family_counts.json")
SIZE_BUDGET = 1_750_000

# Parameters (no BN buffers) at 1000 classes: timm's models, and the official SKNet-101.
FULL_PARAMS = {
    "skresnet18": 11_958_056, "skresnet34": 22_282_376, "skresnet50": 25_803_160,
    "skresnet50d": 25_822_392, "seresnext50": 27_559_896, "resnext50": 25_028_904,
    "sknet50": 27_479_784, "sknet101": 48_736_040, "sknet101_official": 48_686_760,
    # CIFAR-100 (100 classes), worked out by hand: the paper reports 25.2 M for ResNeXt-29 16x32d
    # and 27.7 M for SKNet-29 (its SENet-29, 35.0 M, is SE-ResNeXt-29 8x64d's count).
    "resnext29": 25_229_220, "senet29": 25_751_028, "sknet29": 28_348_644,
}
# d of the SK convs per stage (SE widths for seresnext50), worked out by hand from timm's rules:
# skresnet18/34 make_divisible(planes / 8, 16); skresnet50 make_divisible(planes / 16, 8);
# SKNet max(C / 16, 32); SE make_divisible(4 * planes / 16, 8, round_limit=0).
FULL_STAGE_WIDTHS = {
    "skresnet18": (16, 16, 32, 64), "skresnet34": (16, 16, 32, 64),
    "skresnet50": (8, 8, 16, 32), "skresnet50d": (8, 8, 16, 32),
    "sknet50": (32, 32, 32, 64), "sknet101": (32, 32, 32, 64),
    "sknet101_official": (32, 16, 32, 64), "seresnext50": (16, 32, 64, 128),
    "sknet29": (32, 64, 128), "senet29": (16, 32, 64),
}

# Reduced copies. Every case: batch 2, an odd input size, 4 stages with strides 1,2,2,2 (3 stages
# with 1,2,2 for the CIFAR layouts; so the stride-2 stages see odd extents), 10 classes, M = 2
# dilated paths (3x3 dilation 1 and 2).
_TINY = dict(num_classes=10, planes=(4, 8, 16, 32))
_SKRESNET = dict(family="skresnet", block="basic", split_input=True, attn_rule="divisible", **_TINY)
_BOTTLENECK_G1 = dict(split_input=True, attn_rule="divisible", rd_ratio=Fraction(1, 16),
                      rd_divisor=8, **_TINY)
_RESNEXT_WIDTHS = dict(groups=4, base_width=32, stem_width=8, **_TINY)
# name -> (config, batch, H, W)
CASES = OrderedDict([
    # basic SK units; stem 4 channels = planes[0]: layer1.* identity units (as skresnet18's 64),
    # stages 2-4 open with a stride-2 projection. timm's rule make_divisible(planes / 8, 16):
    # d = 16 everywhere (the minimum; wider than the conv in stages 1-3).
    ("skresnet18_tiny", (FamilyConfig(arch_like="skresnet18", layers=(2, 2, 2, 1), stem_width=4,
                                      rd_ratio=Fraction(1, 8), rd_divisor=16, **_SKRESNET),
                         2, 37, 45)),
    # deeper stage 3; stem 6 != planes[0]: layer1.0 has a stride-1 projection (the split input
    # halves 6 channels into 3 + 3). d = make_divisible(planes / 8, 4) with planes 8, 12, 20, 36:
    # v = 1, 1.5, 2.5, 4.5 -> 4, 4, 4 and 8 (4 < 0.9 * 4.5: the round_limit step).
    ("skresnet34_tiny", (FamilyConfig(arch_like="skresnet34", layers=(1, 2, 3, 1), stem_width=6,
                                      rd_ratio=Fraction(1, 8), rd_divisor=4,
                                      **dict(_SKRESNET, planes=(8, 12, 20, 36))), 2, 45, 41)),
    # SK bottleneck, cardinality 1, split input; d = make_divisible(width / 16, 8) = 8 (min).
    ("skresnet50_tiny", (FamilyConfig(family="skresnet", arch_like="skresnet50", layers=(1, 1, 2, 1),
                                      stem_width=8, **_BOTTLENECK_G1), 2, 33, 37)),
    # deep stem 3 -> 4 -> 4 -> 8 channels, avg_down: layer1.0 projects 8 -> 16 through an
    # Identity pool, layers 2-4 through 2x2 ceil-mode average pools. 41x37 -> stem 21x19 ->
    # max pool 11x10 -> layer2 6x5 (11 odd: partial windows) -> layer3 3x3 (5 odd) -> layer4 2x2
    # (both odd).
    ("skresnet50d_tiny", (FamilyConfig(family="skresnet_d", arch_like="skresnet50d",
                                       layers=(1, 1, 1, 1), stem="deep", stem_width=4,
                                       avg_down=True, **_BOTTLENECK_G1), 2, 41, 37)),
    # ResNeXt bottleneck (4 groups, widths 8..64) with SE after bn3:
    # rd = make_divisible(4 * planes / 16, 4, round_limit=0) = 4, 4, 4, 8.
    ("seresnext50_tiny", (FamilyConfig(family="seresnext", arch_like="seresnext50",
                                       middle="grouped", layers=(1, 2, 1, 1), se=True,
                                       se_ratio=Fraction(1, 16), se_divisor=4, **_RESNEXT_WIDTHS),
                          2, 33, 37)),
    # SKNet bottleneck (4 groups, widths 8..64) with explicit per-stage d = 8, 4, 8, 16 (the
    # official SKNet-101's 32, 16, 32, 64 scaled by 1/4); the paper rule max(C / 4, 8) would
    # give 8, 8, 8, 16.
    ("sknet101_official_tiny", (FamilyConfig(family="sknet", arch_like="sknet101",
                                             layers=(1, 1, 2, 1), attn_rule="explicit",
                                             attn_stage_widths=(8, 4, 8, 16), **_RESNEXT_WIDTHS),
                                2, 37, 45)),
    # CIFAR layout (small 3x3 stem, no pool, 3 stages with strides 1, 2, 2) as SKNet-29: each SK
    # path 2 groups, widths 6, 12, 24, d = max(C / 2, 4) = 4, 6, 12; 15x13 inputs so both
    # stride-2 stages see odd extents (15x13 -> 8x7 -> 4x4).
    ("sknet29_tiny", (FamilyConfig(family="sknet", arch_like="sknet29", layers=(2, 1, 2),
                                   planes=(6, 12, 24), strides=(1, 2, 2), stem="small", stem_width=6,
                                   groups=2, base_width=32, reduction=2, min_width=4,
                                   num_classes=10), 2, 15, 13)),
    # SENet-29 layout: grouped bottlenecks (2 groups) with SE, d = make_divisible(C / 16, 4, 0).
    ("senet29_tiny", (FamilyConfig(family="seresnext", arch_like="senet29", middle="grouped",
                                   layers=(1, 2, 1), planes=(4, 8, 16), strides=(1, 2, 2),
                                   stem="small", stem_width=6, groups=2, base_width=32, se=True,
                                   se_ratio=Fraction(1, 16), se_divisor=4, num_classes=10),
                      2, 13, 15)),
])


build = builder(FamilyNet)


# ----------------------------------------------------------------------------- reference

def expected_family_keys(cfg):
    """timm's state_dict keys, in order, written out from the spec (resnet.py / sknet.py)."""
    if cfg.stem == "deep":
        keys = (["conv1.0.weight"] + bn_keys("conv1.1") + ["conv1.3.weight"] + bn_keys("conv1.4")
                + ["conv1.6.weight"] + bn_keys("bn1"))
        inplanes = 2 * cfg.stem_width
    else:
        keys = ["conv1.weight"] + bn_keys("bn1")
        inplanes = cfg.stem_width
    expansion = 1 if cfg.block == "basic" else 4
    for s, (n, planes, stride) in enumerate(zip(cfg.layers, cfg.planes, cfg.strides), 1):
        for u in range(n):
            p = "layer%d.%d" % (s, u)
            if cfg.middle == "grouped":
                for i in (1, 2, 3):
                    keys += ["%s.conv%d.weight" % (p, i)] + bn_keys("%s.bn%d" % (p, i))
            elif cfg.block == "basic":
                keys += sk_keys(p + ".conv1", cfg.paths, cfg.aggregation == "attention")
                keys += ["%s.conv2.conv.weight" % p] + bn_keys("%s.conv2.bn" % p)
            else:
                keys += ["%s.conv1.conv.weight" % p] + bn_keys("%s.conv1.bn" % p)
                keys += sk_keys(p + ".conv2", cfg.paths, cfg.aggregation == "attention")
                keys += ["%s.conv3.conv.weight" % p] + bn_keys("%s.conv3.bn" % p)
            if cfg.se:
                keys += ["%s.se.fc%d.%s" % (p, i, t) for i in (1, 2) for t in ("weight", "bias")]
            if u == 0 and (stride != 1 or inplanes != expansion * planes):
                keys += downsample_keys(p, cfg.avg_down)
            inplanes = expansion * planes
    return keys + ["fc.weight", "fc.bias"]


def functional_se(sd, p, t, width):
    """t * sigmoid(fc2(ReLU(fc1(mean over H, W)))) with the SE weights at prefix p."""
    w1, w2 = sd[p + ".fc1.weight"].flatten(1), sd[p + ".fc2.weight"].flatten(1)
    assert w1.shape[0] == width, (p, w1.shape, width)
    sv = t.sum(dim=(2, 3)) / (t.shape[2] * t.shape[3])
    z = F.relu(sv @ w1.t() + sd[p + ".fc1.bias"])
    g = 1.0 / (1.0 + torch.exp(-(z @ w2.t() + sd[p + ".fc2.bias"])))
    return t * g[:, :, None, None]


def functional_family(sd, cfg, x):
    """A family network written out with torch.nn.functional from the raw state_dict and the
    config fields only. The attention / SE widths are checked against the metadata's lists.
    Returns (logits, {unit: attention})."""
    bn = bn_fn(sd)
    meta = cfg.metadata()
    d_list = [int(v) for v in meta["attn_widths"].split(",")] if "attn_widths" in meta else []
    se_list = [int(v) for v in meta["se_widths"].split(",")] if "se_widths" in meta else []
    y = functional_stem(sd, cfg.stem, x)
    att = {}
    i = 0
    for s, (n, stride) in enumerate(zip(cfg.layers, cfg.strides), 1):
        for u in range(n):
            p = "layer%d.%d" % (s, u)
            st = stride if u == 0 else 1
            if cfg.middle == "grouped":
                h = F.relu(bn(F.conv2d(y, sd[p + ".conv1.weight"]), p + ".bn1"))
                h = F.relu(bn(F.conv2d(h, sd[p + ".conv2.weight"], stride=st, padding=1,
                                       groups=cfg.groups), p + ".bn2"))
                out = bn(F.conv2d(h, sd[p + ".conv3.weight"]), p + ".bn3")
            elif cfg.block == "basic":
                v, att[p] = functional_sk(sd, p + ".conv1", y, cfg.paths, 1, st,
                                          cfg.branch_kernels, d_list[i], cfg.split_input,
                                          sk_ablation_options(cfg))
                out = bn(F.conv2d(v, sd[p + ".conv2.conv.weight"], padding=1), p + ".conv2.bn")
            else:
                h = F.relu(bn(F.conv2d(y, sd[p + ".conv1.conv.weight"]), p + ".conv1.bn"))
                v, att[p] = functional_sk(sd, p + ".conv2", h, cfg.paths, cfg.groups, st,
                                          cfg.branch_kernels, d_list[i], cfg.split_input,
                                          sk_ablation_options(cfg))
                out = bn(F.conv2d(v, sd[p + ".conv3.conv.weight"]), p + ".conv3.bn")
            if cfg.se:
                out = functional_se(sd, p + ".se", out, se_list[i])
            y = F.relu(out + functional_shortcut(sd, p, y, st, cfg.avg_down))
            i += 1
    return functional_head(sd, y), att


# ----------------------------------------------------------------------------- self-check

def attn_params(cfg, stage_widths):
    """Parameters of the SK attention of an SKNet with d = stage_widths[s] in stage s (M paths):
    fc_reduce C*d, BN 2d, fc_select M*C*d per unit."""
    return sum(n * d * ((1 + cfg.paths) * cfg.unit_width(p) + 2)
               for n, p, d in zip(cfg.layers, cfg.planes, stage_widths))


def derive_official_widths():
    """The per-stage d (multiples of 8, up to 512) that give SKNet-101 the official count."""
    cfg = FULL_SIZE["sknet101"]
    rest = FULL_PARAMS["sknet101"] - attn_params(cfg, FULL_STAGE_WIDTHS["sknet101"])
    target = FULL_PARAMS["sknet101_official"] - rest
    per4 = attn_params(cfg, (0, 0, 0, 1))
    found = []
    ds = range(8, 513, 8)
    for d1 in ds:
        for d2 in ds:
            for d3 in ds:
                r = target - attn_params(cfg, (d1, d2, d3, 0))
                if r > 0 and r % per4 == 0 and (r // per4) % 8 == 0:
                    found.append((d1, d2, d3, r // per4))
    return found


def check_make_divisible():
    # timm's rounding: nearest multiple, at least the divisor, one more below 90 % of v
    assert [make_divisible(v, 32) for v in (8, 16, 32, 40, 47, 48, 64)] == [32, 32, 32, 64, 64, 64, 64]
    assert [make_divisible(Fraction(v, 2), 4) for v in (2, 3, 5, 9)] == [4, 4, 4, 8]
    assert make_divisible(4, 8, round_limit=0) == 8 and make_divisible(20, 8, round_limit=0) == 24
    # skresnext50_32x4d's rule (C/16, divisor 32) equals the paper's max(C // 16, 32) at the
    # SKNet widths 128..1024, but not in general: among the widths C that 32 groups allow, exactly
    # where C/16 <= 32 or C/16 is a multiple of 32 (e.g. C = 768: 64 instead of 48).
    same = [c for c in range(32, 8193, 32) if make_divisible(Fraction(c, 16), 32) == max(c // 16, 32)]
    assert same == [c for c in range(32, 8193, 32) if c <= 512 or c % 512 == 0]
    assert make_divisible(Fraction(768, 16), 32) == 64
    print("  make_divisible ok; timm's SKNet rule make_divisible(C/16, 32) == max(C/16, 32) at "
          "C = 128..1024, in general only where C <= 512 or C is a multiple of 512")


def self_check():
    print("self-check:")
    check_make_divisible()
    for arch, cfg in FULL_SIZE.items():
        net = FamilyNet(cfg)
        params = sum(p.numel() for p in net.parameters())
        assert params == FULL_PARAMS[arch], (arch, params)
        assert list(net.state_dict()) == expected_family_keys(cfg), arch
        stage = [cfg.se_width(4 * p) if cfg.se else cfg.attn_width(s, cfg.unit_width(p))
                 for s, p in enumerate(cfg.planes)] if cfg.se or cfg.middle == "sk" else None
        assert stage is None or tuple(stage) == FULL_STAGE_WIDTHS[arch], (arch, stage)
        print("  %-18s %s parameters, keys as timm, widths %s  ok"
              % (arch, format(params, ","), ",".join(map(str, stage)) if stage else "-"))
    for arch, other, keys in (("resnext50", ResNeXt(resnext_config("resnext50")),
                               expected_resnext_keys(resnext_config("resnext50"))),
                              ("sknet50", SKNet(sknet_config("sknet50")),
                               expected_keys(sknet_config("sknet50"))),
                              ("sknet101", SKNet(sknet_config("sknet101")),
                               expected_keys(sknet_config("sknet101")))):
        mine = FamilyNet(FULL_SIZE[arch]).state_dict()
        assert list(mine) == list(other.state_dict()) == keys, arch
        assert all(mine[k].shape == v.shape for k, v in other.state_dict().items()), arch
    print("  resnext50, sknet50, sknet101 == resnext_torch / sk_torch (keys, shapes)  ok")
    found = derive_official_widths()
    assert found == [FULL_STAGE_WIDTHS["sknet101_official"]], found
    print("  official SKNet-101 (%s parameters): the only per-stage d (multiples of 8) is %s  ok"
          % (format(FULL_PARAMS["sknet101_official"], ","), found[0]))
    check_cases("", CASES, build, expected_family_keys, functional_family)


# ----------------------------------------------------------------------------- generation

@torch.no_grad()
def se_gate_stats(net, x):
    """(min, max, smallest per-unit mean over images of the channel spread max - min) of the SE
    gates on x, or None without SE."""
    gates = []
    hooks = [m.fc2.register_forward_hook(lambda mod, i, o: gates.append(torch.sigmoid(o)))
             for m in net.modules() if isinstance(m, SEModule)]
    net(x)
    for hk in hooks:
        hk.remove()
    if not gates:
        return None
    spread = min((g.flatten(1).max(dim=1).values - g.flatten(1).min(dim=1).values).mean().item()
                 for g in gates)
    return min(g.min().item() for g in gates), max(g.max().item() for g in gates), spread


def gen_case(name, cfg, n, h, w, written, out=OUT, generator=GENERATOR, tag="families"):
    """Writes case `name` to `out` (seeded from tag/name), recording `generator` in the metadata."""
    seed = case_seed(name, tag)
    net, x = build(cfg, seed, n, h, w)
    y32, a32, sd32, logits, att = evaluate(net, x, lambda sd, t: functional_family(sd, cfg, t))
    scale = logits.abs().max().item()
    dl = (y32 - logits).abs().max().item()
    images = (logits[0] - logits[1]).abs().max().item()
    line = ("  %s: logits max|.|=%.3f std=%.3f, max|image 0 - image 1| %.3f; float32 module vs "
            "golden: logits %.1e (rel %.1e)" % (name, scale, logits.std().item(), images, dl,
                                                dl / scale))
    assert 0.5 < scale < 20 and images > 0.05 * scale, (scale, images)
    if att and cfg.aggregation == "sum":
        assert all(bool((a == 1).all()) for a in att.values())
        line += ", attention: all ones (sum aggregation)"
    elif att:
        dat = max((a32[k] - att[k]).abs().max().item() for k in att)
        spread, small = attention_stats(att)
        line += ", attention %.1e; min unit attention spread %.2f, share < 0.01: %.3f" % (
            dat, spread, small)
        assert spread > 0.1, spread
    se = se_gate_stats(net.double(), x.double())
    if se:
        line += "; SE gates in [%.3f, %.3f], min unit channel spread %.2f" % se
        assert se[2] > 0.1, se
    print(line)

    meta = cfg.metadata()
    meta.update(run_metadata(n, h, w, seed, generator))
    ameta = None
    if att:
        ameta = {"paths": str(cfg.paths), "batch": str(n), "seed": str(seed), "generator": generator}
    write_case(out, name, sd32, meta, x, logits, written, att or None, ameta)


def counts():
    """Full-size parameters and multiply-adds (FamilyNet, forward hooks) -> family_counts.json:
    ImageNet networks at 224x224 and 1000 classes, CIFAR ones at 32x32 and 100 classes."""
    table = OrderedDict()
    print("%-18s %12s %16s" % ("network", "params", "macs"))
    for arch, cfg in FULL_SIZE.items():
        size = INPUT_SIZE[arch]
        params, macs = count_params_macs(FamilyNet(cfg), size, size)
        assert params == FULL_PARAMS[arch], arch
        table[arch] = OrderedDict([("params", params), ("macs", macs), ("size", [size, size]),
                                   ("num_classes", cfg.num_classes), ("arch_like", cfg.arch_like),
                                   ("metadata", cfg.metadata())])
        print("%-18s %12s %16s  (%.3f G at %dx%d)" % (arch, format(params, ","), format(macs, ","), macs / 1e9,
                                                       size, size))
    doc = OrderedDict([
        ("generator", GENERATOR),
        ("macs_rule", "multiply-adds of every convolution (C_out * C_in/groups * kh * kw per "
                      "output pixel, SK attention and SE fcs included) and of the fc (in * out), "
                      "one image; no BN, activations, pooling, softmax, biases or elementwise ops"),
        ("networks", table)])
    with open(COUNTS, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote %s" % os.path.relpath(COUNTS, ROOT))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--self-check", action="store_true", help="only run the self-check")
    ap.add_argument("--counts", action="store_true",
                    help="only write the full-size parameter / multiply-add table")
    args = ap.parse_args()
    setup_torch()
    if args.counts:
        counts()
        return

    self_check()
    if args.self_check:
        return
    write_cases("families", OUT, CASES, gen_case, SIZE_BUDGET)


if __name__ == "__main__":
    main()
