#!/usr/bin/python3
"""Generate sknet's golden fixtures for the SK ablations of the paper's section 4 with PyTorch.

Run from the repository root:

    /usr/bin/python3 tools/gen_ablation_fixtures.py               # self-check, then (re)write
    /usr/bin/python3 tools/gen_ablation_fixtures.py --self-check  # only the self-check

Writes tests/data/ablations/<case>.{safetensors,input.npy,logits.npy,attention.safetensors} in
the layout of tools/gen_family_fixtures.py (whose FamilyNet, functional re-implementation and
writer it reuses). The metadata records the SK options: path_kernels, path_dilations and
path_groups as resolved per-path lists and aggregation (attention | sum), besides the family
fields. The networks are reduced SKNets (ResNeXt bottlenecks, G = 4, unit widths 8..64) and one
reduced SK-ResNet (basic blocks, split input), batch 2 and odd input sizes, with:

* a second 3x3 path of dilation 1 or 3 (the default dilation 2 is tests/data/sknet's);
* a true 5x5 second path; a true 7x7 second path with twice the groups (the paper's G = 32 vs 64
  scaled down: G = 4 and 8, which makes stage 1's 7x7 path depthwise);
* M = 3 with dilated 3x3 paths (dilations 1, 2, 3) and with true 3x3, 5x5, 7x7 kernels;
* simple aggregation, V = U_1 + U_2 without attention parameters (the paper's "w/o SK
  attention"), on the SKNet and on the SK-ResNet with a 5x5 second path.
"""

import argparse
import os
import sys
from collections import OrderedDict
from fractions import Fraction

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from families_torch import FamilyConfig, FamilyNet  # noqa: E402
from gen_family_fixtures import expected_family_keys, functional_family, gen_case  # noqa: E402
from gen_net_fixtures import ROOT, builder, check_cases, setup_torch, write_cases  # noqa: E402

GENERATOR = "tools/gen_ablation_fixtures.py"
OUT = os.path.join(ROOT, "tests", "data", "ablations")
SIZE_BUDGET = 1_500_000

# SKNet bottlenecks: 3 stages (strides 1, 2, 2; the maps after the stem are 9-10 pixels, then 5, then
# 3: odd everywhere), 4 groups, unit widths 8, 16, 32, d = max(C / 4, 8) = 8.
_SKNET = dict(family="sknet", arch_like="sknet50", groups=4, base_width=32, stem_width=8,
              num_classes=10, planes=(4, 8, 16), layers=(1, 1, 1), strides=(1, 2, 2), attn_rule="paper",
              reduction=4, min_width=8)
# name -> (config, batch, H, W)
CASES = OrderedDict([
    ("sknet_d1_tiny", (FamilyConfig(path_kernels=(3, 3), path_dilations=(1, 1), **_SKNET), 2, 35, 33)),
    ("sknet_d3_tiny", (FamilyConfig(path_kernels=(3, 3), path_dilations=(1, 3), **_SKNET), 2, 33, 39)),
    ("sknet_5x5_tiny", (FamilyConfig(path_kernels=(3, 5), path_dilations=(1, 1), **_SKNET), 2, 37, 35)),
    ("sknet_7x7_g2_tiny", (FamilyConfig(path_kernels=(3, 7), path_dilations=(1, 1), path_groups=(4, 8),
                                        **_SKNET), 2, 39, 37)),
    ("sknet_m3_dilated_tiny", (FamilyConfig(paths=3, **_SKNET), 2, 33, 35)),
    ("sknet_m3_full_tiny", (FamilyConfig(paths=3, branch_kernels="full", **_SKNET), 2, 35, 37)),
    ("sknet_sum_tiny", (FamilyConfig(aggregation="sum", **_SKNET), 2, 37, 33)),
    # basic SK units with split input (timm's skresnet18 layout), d = make_divisible(planes / 8, 4).
    ("skresnet_5x5_sum_tiny", (FamilyConfig(family="skresnet", arch_like="skresnet18", block="basic",
                                            split_input=True, attn_rule="divisible",
                                            rd_ratio=Fraction(1, 8), rd_divisor=4, stem_width=4,
                                            num_classes=10, planes=(4, 8, 16), layers=(1, 1, 1), strides=(1, 2, 2),
                                            path_kernels=(3, 5), aggregation="sum"), 2, 35, 39)),
])

build = builder(FamilyNet)


def self_check():
    print("self-check:")
    for name, (cfg, _, _, _) in CASES.items():
        meta = cfg.metadata()
        assert "path_kernels" in meta and "aggregation" in meta, name
        print("  %-24s kernels %s, dilations %s, groups %s, %s" % (
            name, meta["path_kernels"], meta["path_dilations"], meta["path_groups"], meta["aggregation"]))
    check_cases("", CASES, build, expected_family_keys, functional_family)


def gen_nontrivial(name, cfg, n, h, w, written):
    """gen_case with the seed of "ablations/<name>", or, while its checks refuse the draw (an SK unit's
    attention near uniform, logits too flat), of "ablations.1/<name>", "ablations.2/<name>", ...
    (the seed used is in the metadata)."""
    for salt in range(20):
        try:
            return gen_case(name, cfg, n, h, w, written, OUT, GENERATOR,
                            "ablations" + ("" if salt == 0 else ".%d" % salt))
        except AssertionError as e:
            print("  %s: draw %d refused (%s), redrawing" % (name, salt, e))
    raise RuntimeError("no usable draw for " + name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--self-check", action="store_true", help="only run the self-check")
    args = ap.parse_args()
    setup_torch()
    self_check()
    if args.self_check:
        return
    write_cases("ablations", OUT, CASES, gen_nontrivial, SIZE_BUDGET)


if __name__ == "__main__":
    main()
