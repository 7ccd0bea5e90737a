#!/usr/bin/python3
"""Generate sknet's golden fixtures for SK-ShuffleNetV2 with PyTorch.

Run from the repository root:

    /usr/bin/python3 tools/gen_shufflenet_fixtures.py               # self-check, then (re)write fixtures
    /usr/bin/python3 tools/gen_shufflenet_fixtures.py --self-check  # only the self-check

Writes tests/data/shufflenet/<case>.safetensors (the state_dict with torchvision's names and the SK
convolutions' timm names, incl. the I64 `num_batches_tracked` scalars; the architecture in the
metadata), <case>.input.npy, <case>.logits.npy and <case>.attention.safetensors (one [N, M, C]
tensor per unit). The network is tools/shufflenet_torch.py's SKShuffleNetV2, reduced. Weights and
inputs are float32 drawn from fixed seeds; expected outputs are computed in float64 from those exact
float32 values and rounded to float32 once. The self-check also compares the module with a version
written out with torch.nn.functional from the state_dict, and the full-size counts with torchvision's
(plain ShuffleNetV2 1.0x: 2,278,604 parameters) and with the paper's (145.66 M multiply-adds for
SK-ShuffleNetV2, 140.35 M for ShuffleNetV2, which the paper reports).
"""

import os
import sys
from collections import OrderedDict

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from families_torch import count_params_macs  # noqa: E402
from gen_net_fixtures import (ROOT, attention_stats, bn_fn, bn_keys, builder, case_seed,  # noqa: E402
                              check_cases, evaluate, functional_head, functional_sk, generator_main,
                              run_metadata, sk_keys, write_case, write_cases)
from shufflenet_torch import (TORCHVISION_X1_0_PARAMS, ShuffleConfig, SKShuffleNetV2,  # noqa: E402
                              channel_shuffle)

GENERATOR = "tools/gen_shufflenet_fixtures.py"
OUT = os.path.join(ROOT, "tests", "data", "shufflenet")
SIZE_BUDGET = 200_000

# Full size (1000 classes, 224 x 224): what this reading gives, checked against sknet info.
FULL_SK_PARAMS, FULL_SK_MACS = 2_503_044, 148_791_672
FULL_PLAIN_MACS = 144_907_992

# Reduced copy: batch 2, odd input 37 x 45 (stem 19 x 23, pool 10 x 12, stages 5 x 6, 3 x 3, 2 x 2),
# 10 classes, stage channels 12 / 20 / 36 (branch widths 6 / 10 / 18: partial SIMD blocks), two units
# per stage (a downsampling unit and a stride-1 unit), conv5 40 wide, M = 2 dilated paths, attention
# width max(w // 2, 4) = 4, 5, 9.
CASES = OrderedDict([
    ("sk_shufflenetv2_tiny", (ShuffleConfig(layers=(2, 2, 2), channels=(12, 20, 36), stem_width=6, head_width=40,
                                            num_classes=10, reduction=2, min_width=4), 2, 37, 45)),
])

build = builder(SKShuffleNetV2)


def expected_keys(cfg):
    """torchvision's shufflenet_v2 state_dict keys with branch2.3 the SK convolution, in order."""
    keys = ["conv1.0.weight"] + bn_keys("conv1.1")
    for s, n in enumerate(cfg.layers):
        for u in range(n):
            p = "stage%d.%d" % (s + 2, u)
            if u == 0:
                keys += ["%s.branch1.0.weight" % p] + bn_keys(p + ".branch1.1")
                keys += ["%s.branch1.2.weight" % p] + bn_keys(p + ".branch1.3")
            keys += ["%s.branch2.0.weight" % p] + bn_keys(p + ".branch2.1")
            keys += sk_keys(p + ".branch2.3", cfg.paths)
            keys += ["%s.branch2.5.weight" % p] + bn_keys(p + ".branch2.6")
    return keys + ["conv5.0.weight"] + bn_keys("conv5.1") + ["fc.weight", "fc.bias"]


def functional_shufflenet(sd, cfg, x):
    """SK-ShuffleNetV2 written out with torch.nn.functional from the raw state_dict and the config
    only. Returns (logits, {unit: attention})."""
    bn = bn_fn(sd)
    widths = [int(v) for v in cfg.metadata()["attn_widths"].split(",")]
    y = F.relu(bn(F.conv2d(x, sd["conv1.0.weight"], stride=2, padding=1), "conv1.1"))
    y = F.max_pool2d(y, 3, 2, 1)
    att = {}
    i = 0
    for s, n in enumerate(cfg.layers):
        for u in range(n):
            p = "stage%d.%d" % (s + 2, u)
            st = 2 if u == 0 else 1
            c = y.shape[1]
            if st == 2:
                left = bn(F.conv2d(y, sd[p + ".branch1.0.weight"], stride=2, padding=1, groups=c), p + ".branch1.1")
                left = F.relu(bn(F.conv2d(left, sd[p + ".branch1.2.weight"]), p + ".branch1.3"))
                right = y
            else:
                left, right = y[:, :c // 2], y[:, c // 2:]
            h = F.relu(bn(F.conv2d(right, sd[p + ".branch2.0.weight"]), p + ".branch2.1"))
            w = h.shape[1]
            v, att[p] = functional_sk(sd, p + ".branch2.3", h, cfg.paths, w, st, "dilated", widths[i])
            right = F.relu(bn(F.conv2d(v, sd[p + ".branch2.5.weight"]), p + ".branch2.6"))
            y = channel_shuffle(torch.cat((left, right), dim=1), 2)
            i += 1
    y = F.relu(bn(F.conv2d(y, sd["conv5.0.weight"]), "conv5.1"))
    return functional_head(sd, y), att


def self_check():
    print("self-check:")
    plain = SKShuffleNetV2(ShuffleConfig(sk=False))
    p, m = count_params_macs(plain)
    assert p == TORCHVISION_X1_0_PARAMS and m == FULL_PLAIN_MACS, (p, m)
    print("  ShuffleNetV2 1.0x: %s parameters (== torchvision), %s multiply-adds  ok" % (format(p, ","), format(m, ",")))
    cfg = ShuffleConfig()
    net = SKShuffleNetV2(cfg)
    p, m = count_params_macs(net)
    assert (p, m) == (FULL_SK_PARAMS, FULL_SK_MACS), (p, m)
    assert list(net.state_dict()) == expected_keys(cfg)
    print("  SK-ShuffleNetV2 1.0x: %s parameters, %s multiply-adds (paper: 145.66 M), keys as specified  ok"
          % (format(p, ","), format(m, ",")))
    check_cases("", CASES, build, expected_keys, functional_shufflenet)


def gen_case(name, cfg, n, h, w, written):
    seed = case_seed(name, "sk_shufflenetv2")
    net, x = build(cfg, seed, n, h, w)
    y32, a32, sd32, logits, att = evaluate(net, x, lambda sd, t: functional_shufflenet(sd, cfg, t))
    scale = logits.abs().max().item()
    dl = (y32 - logits).abs().max().item()
    dat = max((a32[k] - att[k]).abs().max().item() for k in att)
    spread, small = attention_stats(att)
    img = (logits[0] - logits[1]).abs().max().item()
    print("  %s: logits max|.|=%.3f std=%.3f; float32 module vs golden: logits %.1e (rel %.1e), "
          "attention %.1e; min unit attention spread %.2f, share of weights < 0.01: %.3f; "
          "max|image 0 - image 1| %.3f" % (name, scale, logits.std().item(), dl, dl / scale, dat, spread, small, img))
    assert 0.5 < scale < 20 and spread > 0.1 and img > 0.05 * scale, (scale, spread, img)
    meta = dict(cfg.metadata())
    meta.update(run_metadata(n, h, w, seed, GENERATOR))
    ameta = {"paths": str(cfg.paths), "batch": str(n), "seed": str(seed), "generator": GENERATOR}
    write_case(OUT, name, sd32, meta, x, logits, written, att, ameta)


def main():
    generator_main(__doc__, self_check, lambda: write_cases("sk_shufflenetv2", OUT, CASES, gen_case, SIZE_BUDGET))


if __name__ == "__main__":
    main()
