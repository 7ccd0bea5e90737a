"""Independent PyTorch references for timm's other Selective Kernel families and SE-ResNeXt.

Like ``sk_torch.py`` and ``resnext_torch.py`` this is the "other side" of sknet's golden tests:
plain ``torch.nn`` modules written from the papers and from reading timm's model definitions
(``timm/models/sknet.py``, ``timm/models/resnet.py``, ``timm/layers/selective_kernel.py``,
``timm/layers/squeeze_excite.py``, ``timm/layers/helpers.py``), never from the C++ code. One
configurable network, ``FamilyNet``, covers

* ``skresnet18`` / ``skresnet34``  -- basic blocks whose first 3x3 conv is an SK conv
                                      (timm ``SelectiveKernelBasic``; family ``skresnet``),
* ``skresnet50``                   -- SK bottleneck with cardinality 1, split input (``skresnet``),
* ``skresnet50d``                  -- the same with the deep stem and avg_down (``skresnet_d``),
* ``seresnext50``                  -- ResNeXt-50 32x4d with SE after bn3 (timm
                                      ``seresnext50_32x4d``; family ``seresnext``),
* ``resnext50``, ``sknet50``, ``sknet101`` and ``sknet101_official`` (SKNet-101 with the official
  Caffe model's per-stage attention widths 32, 16, 32, 64) -- for the parameter / multiply-add
  table; their fixtures are ``tests/data/resnext`` and ``tests/data/sknet``.

The units are ``sk_torch.SKUnit`` (SK bottleneck), ``resnext_torch.Bottleneck`` (grouped
bottleneck, optionally with SE) and ``SKBasicUnit`` below, so names are timm's:

    stem "imagenet": conv1.weight [stem_width, in_chans, 7, 7] (stride 2, pad 3), bn1.*, 3x3/2 max pool
    stem "deep":     conv1.0.weight [S, in, 3, 3] (stride 2), conv1.1.* (BN), conv1.3.weight [S, S, 3, 3],
                     conv1.4.* (BN), conv1.6.weight [2S, S, 3, 3], bn1.* [2S], 3x3/2 max pool (S = stem_width)
    stem "small":    conv1.weight [stem_width, in_chans, 3, 3] (stride 1, pad 1), bn1.*, no pool
    basic SK unit:   conv1.paths.{m}.conv.weight, conv1.paths.{m}.bn.*, conv1.attn.fc_reduce.weight,
                     conv1.attn.bn.*, conv1.attn.fc_select.weight, conv2.conv.weight, conv2.bn.*,
                     [se.fc1.*, se.fc2.*], downsample.*
    SK bottleneck:   conv1.{conv,bn}, conv2.<SK keys>, conv3.{conv,bn}, [se.*], downsample.*
    grouped:         conv1, bn1, conv2, bn2, conv3, bn3, [se.fc1.{weight,bias}, se.fc2.{weight,bias}],
                     downsample.*
    downsample:      plain downsample.0 (1x1 conv with the stride), downsample.1 (BN);
                     avg_down downsample.0 (AvgPool2d(2, s, ceil_mode, count_include_pad=False) or
                     Identity: no parameters), downsample.1 (1x1 conv), downsample.2 (BN)
    head:            fc.weight, fc.bias

Every unit that changes the stride or the channel count has the projection (timm builds it for
a stage's first unit when stride != 1 or inplanes != planes * expansion).
"""

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Tuple

import torch
import torch.nn as nn

from sk_torch import (BN_EPS, ResidualUnit, SKConv, SKUnit, StagedNet, _ConvBN, make_stem,
                      randomize_net_, sk_ablation_metadata, sk_ablation_options)
from resnext_torch import Bottleneck

__all__ = ["make_divisible", "FamilyConfig", "SKBasicUnit", "FamilyNet", "FULL_SIZE",
           "INPUT_SIZE", "family_config", "randomize_family_", "count_params_macs"]


def make_divisible(v, divisor, min_value=None, round_limit=Fraction(9, 10)):
    """timm's channel rounding: the multiple of `divisor` nearest to v (halves round up), at
    least `min_value` (default `divisor`); if that is below round_limit * v, one divisor more.
    Exact (v may be a Fraction)."""
    min_value = min_value or divisor
    new = max(min_value, int(v + Fraction(divisor, 2)) // divisor * divisor)
    if new < round_limit * v:
        new += divisor
    return new


def _ints(t):
    return ",".join(str(v) for v in t)


def _ratio(r):
    return "%d/%d" % (r.numerator, r.denominator)


@dataclass(frozen=True)
class FamilyConfig:
    """One network of the ResNet layout: stem, stages of units, average pool, fc."""
    family: str                          # skresnet | skresnet_d | seresnext | sknet | resnext
    arch_like: str                       # the full-size architecture (e.g. "skresnet50d")
    block: str = "bottleneck"            # basic (expansion 1) | bottleneck (expansion 4)
    middle: str = "sk"                   # sk | grouped (the unit's 3x3 convolution)
    layers: Tuple[int, ...] = (3, 4, 6, 3)
    planes: Tuple[int, ...] = (64, 128, 256, 512)
    strides: Tuple[int, ...] = (1, 2, 2, 2)
    groups: int = 1
    base_width: int = 64
    num_classes: int = 1000
    in_chans: int = 3
    stem: str = "imagenet"               # imagenet | deep | small
    stem_width: int = 64                 # deep: the first two convs; the third gives 2 * stem_width
    avg_down: bool = False
    se: bool = False
    se_ratio: Fraction = Fraction(1, 16)
    se_divisor: int = 8
    paths: int = 2
    split_input: bool = False
    attn_rule: str = "paper"             # paper | divisible | explicit
    reduction: int = 16                  # paper: d = max(C // reduction, min_width)
    min_width: int = 32
    rd_ratio: Fraction = Fraction(1, 16)  # divisible: d = make_divisible(C * rd_ratio, rd_divisor)
    rd_divisor: int = 8
    attn_stage_widths: Tuple[int, ...] = field(default=())   # explicit: d of each stage
    branch_kernels: str = "dilated"
    path_kernels: Tuple[int, ...] = ()   # the paper's ablations (sk_torch.SKConv), one per path
    path_dilations: Tuple[int, ...] = ()
    path_groups: Tuple[int, ...] = ()
    aggregation: str = "attention"       # attention | sum

    def __post_init__(self):
        if not (len(self.layers) == len(self.planes) == len(self.strides)) or not self.layers:
            raise ValueError("layers, planes and strides must have the same non-zero length")
        if self.stem not in ("imagenet", "deep", "small"):
            raise ValueError("stem must be imagenet, deep or small, got %r" % (self.stem,))
        if (self.block, self.middle) not in (("basic", "sk"), ("bottleneck", "sk"),
                                             ("bottleneck", "grouped")):
            raise ValueError("unsupported block/middle %s/%s" % (self.block, self.middle))
        if self.block == "basic" and (self.groups != 1 or self.base_width != 64):
            raise ValueError("basic blocks need groups 1 and base_width 64 (as timm)")
        if self.attn_rule not in ("paper", "divisible", "explicit"):
            raise ValueError("attn_rule must be paper, divisible or explicit")
        if self.attn_rule == "explicit" and len(self.attn_stage_widths) != len(self.layers):
            raise ValueError("explicit attention widths need one width per stage")

    @property
    def expansion(self):
        return 1 if self.block == "basic" else 4

    @property
    def inplanes(self):
        """Channels after the stem."""
        return 2 * self.stem_width if self.stem == "deep" else self.stem_width

    def unit_width(self, planes):
        """Width of the unit's 3x3 conv: planes (basic), floor(planes * base_width / 64) * groups."""
        if self.block == "basic":
            return planes
        return (planes * self.base_width // 64) * self.groups

    def attn_width(self, stage, channels):
        """Attention width d of an SK conv with `channels` outputs in stage `stage` (0-based)."""
        if self.attn_rule == "paper":
            return max(channels // self.reduction, self.min_width)
        if self.attn_rule == "divisible":
            return make_divisible(channels * self.rd_ratio, self.rd_divisor)
        return self.attn_stage_widths[stage]

    def se_width(self, channels):
        """Reduced width of an SE module on `channels` (timm: round_limit 0), or None without SE."""
        if not self.se:
            return None
        return make_divisible(channels * self.se_ratio, self.se_divisor, round_limit=0)

    def units(self):
        """(name, stage index, inplanes, planes, stride) of every unit, in order."""
        out = []
        inplanes = self.inplanes
        for s, (n, planes, stride) in enumerate(zip(self.layers, self.planes, self.strides)):
            for u in range(n):
                out.append(("layer%d.%d" % (s + 1, u), s, inplanes, planes, stride if u == 0 else 1))
                inplanes = self.expansion * planes
        return out

    def attn_widths(self):
        """d of every SK unit, in order (empty without SK)."""
        if self.middle != "sk":
            return []
        return [self.attn_width(s, self.unit_width(p)) for _, s, _, p, _ in self.units()]

    def metadata(self):
        """The string metadata of a family fixture (see tests/data/README.md)."""
        meta = {
            "family": self.family, "arch_like": self.arch_like, "block": self.block,
            "stem": self.stem, "layers": _ints(self.layers), "planes": _ints(self.planes),
            "strides": _ints(self.strides), "groups": str(self.groups),
            "base_width": str(self.base_width), "num_classes": str(self.num_classes),
            "in_chans": str(self.in_chans), "stem_width": str(self.stem_width),
            "inplanes": str(self.inplanes), "avg_down": str(int(self.avg_down)),
            "middle": self.middle, "se": str(int(self.se)),
        }
        if self.se:
            meta["se_ratio"] = _ratio(self.se_ratio)
            meta["se_divisor"] = str(self.se_divisor)
            meta["se_widths"] = _ints(self.se_width(self.expansion * p)
                                      for _, _, _, p, _ in self.units())
        if self.middle == "sk":
            meta["paths"] = str(self.paths)
            meta["split_input"] = str(int(self.split_input))
            meta["branch_kernels"] = self.branch_kernels
            meta["attn_rule"] = self.attn_rule
            if self.attn_rule == "paper":
                meta["reduction"] = str(self.reduction)
                meta["min_width"] = str(self.min_width)
            elif self.attn_rule == "divisible":
                meta["rd_ratio"] = _ratio(self.rd_ratio)
                meta["rd_divisor"] = str(self.rd_divisor)
            else:
                meta["attn_stage_widths"] = _ints(self.attn_stage_widths)
            meta["attn_widths"] = _ints(self.attn_widths())
            meta.update(sk_ablation_metadata(self))
        return meta


class SKBasicUnit(ResidualUnit):
    """timm's ``SelectiveKernelBasic``: SKConv(inplanes -> planes, the unit's stride) -> 3x3 conv +
    BN (no ReLU) [-> SE], plus the identity or a projection, then ReLU.
    forward(x) returns (y, attention[N, M, planes])."""

    def __init__(self, inplanes, planes, stride, cfg, attn_width, split_input=False,
                 avg_down=False, se_width=None):
        super().__init__()
        self.conv1 = SKConv(inplanes, planes, paths=cfg.paths, groups=1, stride=stride,
                            branch_kernels=cfg.branch_kernels, width=attn_width,
                            split_input=split_input, **sk_ablation_options(cfg))
        self.conv2 = _ConvBN(planes, planes, 3, padding=1, act=False)
        self._add_tail(inplanes, planes, stride, avg_down, se_width)

    @property
    def last_bn(self):
        return self.conv2.bn

    def forward(self, x):
        shortcut = self._shortcut(x)
        y, a = self.conv1(x)
        return self._residual(self.conv2(y), shortcut), a


class FamilyNet(StagedNet):
    """A ``FamilyConfig`` network. forward(x) returns logits [N, num_classes] and fills
    ``self.attention`` (OrderedDict unit name -> [N, M, C] for every SK unit)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.conv1, inplanes = make_stem(cfg.stem, cfg.in_chans, cfg.stem_width)
        assert inplanes == cfg.inplanes
        self.bn1 = nn.BatchNorm2d(inplanes, eps=BN_EPS)
        stages = [[] for _ in cfg.layers]
        for name, st, inplanes, planes, stride in cfg.units():
            out = cfg.expansion * planes
            opts = dict(avg_down=cfg.avg_down, se_width=cfg.se_width(out))
            if cfg.middle == "grouped":
                unit = Bottleneck(inplanes, planes, stride, cfg, **opts)
            else:
                opts.update(attn_width=cfg.attn_width(st, cfg.unit_width(planes)),
                            split_input=cfg.split_input)
                unit_cls = SKBasicUnit if cfg.block == "basic" else SKUnit
                unit = unit_cls(inplanes, planes, stride, cfg, **opts)
            stages[st].append(unit)
        for st, units in enumerate(stages, 1):
            self.add_module("layer%d" % st, nn.Sequential(*units))
        self.num_features = cfg.expansion * cfg.planes[-1]
        self.fc = nn.Linear(self.num_features, cfg.num_classes, bias=True)
        self.attention = OrderedDict()


_SKNET = dict(family="sknet", groups=32, base_width=4, attn_rule="paper", reduction=16,
              min_width=32)
_SKRESNET = dict(family="skresnet", block="basic", split_input=True, attn_rule="divisible",
                 rd_ratio=Fraction(1, 8), rd_divisor=16)
_SKRESNET50 = dict(family="skresnet", split_input=True, attn_rule="divisible",
                   rd_ratio=Fraction(1, 16), rd_divisor=8)

_CIFAR29 = dict(layers=(3, 3, 3), planes=(64, 128, 256), strides=(1, 2, 2), stem="small",
                stem_width=64, num_classes=100)

# The full-size networks (1000 classes) as timm builds them (timm's non-deep stem always has 64
# channels: stem_width 64 here).
FULL_SIZE = OrderedDict([
    ("skresnet18", FamilyConfig(arch_like="skresnet18", layers=(2, 2, 2, 2), **_SKRESNET)),
    ("skresnet34", FamilyConfig(arch_like="skresnet34", layers=(3, 4, 6, 3), **_SKRESNET)),
    ("skresnet50", FamilyConfig(arch_like="skresnet50", **_SKRESNET50)),
    ("skresnet50d", FamilyConfig(arch_like="skresnet50d", **dict(
        _SKRESNET50, family="skresnet_d", stem="deep", stem_width=32, avg_down=True))),
    ("seresnext50", FamilyConfig(family="seresnext", arch_like="seresnext50", middle="grouped",
                                 groups=32, base_width=4, se=True)),
    ("resnext50", FamilyConfig(family="resnext", arch_like="resnext50", middle="grouped",
                               groups=32, base_width=4)),
    ("sknet50", FamilyConfig(arch_like="sknet50", **_SKNET)),
    ("sknet101", FamilyConfig(arch_like="sknet101", layers=(3, 4, 23, 3), **_SKNET)),
    ("sknet101_official", FamilyConfig(arch_like="sknet101", layers=(3, 4, 23, 3), **dict(
        _SKNET, attn_rule="explicit", attn_stage_widths=(32, 16, 32, 64)))),
    # CIFAR (32x32 inputs, 100 classes): ResNeXt-29 16x32d (Xie et al., section 5.3: a 3x3 stem of
    # 64 without pooling, 3 stages of 3 bottlenecks with outputs 256, 512, 1024), its SE version
    # and SKNet-29 with each of its two paths 32 groups of 16 channels (widths 512, 1024, 2048 as
    # ResNeXt-29; the reading of the SKNet paper closest to its 27.7 M parameters).
    ("resnext29", FamilyConfig(arch_like="resnext29", **_CIFAR29, middle="grouped", groups=16,
                               base_width=32, family="resnext")),
    ("senet29", FamilyConfig(arch_like="senet29", **_CIFAR29, middle="grouped", groups=16,
                             base_width=32, family="seresnext", se=True)),
    ("sknet29", FamilyConfig(arch_like="sknet29", **dict(_SKNET, **_CIFAR29, base_width=16))),
])

# The input side of each full-size network: 32 for the CIFAR ones, else 224.
INPUT_SIZE = {arch: 32 if cfg.stem == "small" else 224 for arch, cfg in FULL_SIZE.items()}


def family_config(arch, **overrides):
    """The FamilyConfig of a full-size architecture (FULL_SIZE key) with optional overrides."""
    if arch not in FULL_SIZE:
        raise ValueError("unknown arch %r (expected one of %s)" % (arch, ", ".join(FULL_SIZE)))
    return replace(FULL_SIZE[arch], **overrides)


def randomize_family_(net, generator, calib_shape=(2, 96, 96)):
    """``sk_torch.randomize_net_``: Kaiming convs (SE fc1/fc2 too, their biases N(0, 0.2)),
    fc_select std 1.5/sqrt(d), each unit's last BN gamma U(0.2, 0.5), fc N(0, 1/sqrt(features)),
    every feature-map BN calibrated on a random float64 batch."""
    return randomize_net_(net, generator, calib_shape=calib_shape)


@torch.no_grad()
def count_params_macs(net, height=224, width=224):
    """(parameters, multiply-adds) of `net` for one image: the multiply-adds of every Conv2d
    (C_out * C_in/groups * kh * kw per output pixel; SK attention and SE fcs included) and
    Linear (in * out), counted with forward hooks; no BN, activations, pooling or biases."""
    macs = [0]

    def conv_hook(mod, inputs, out):
        kh, kw = mod.kernel_size
        macs[0] += out[0].numel() * (mod.in_channels // mod.groups) * kh * kw

    def fc_hook(mod, inputs, out):
        macs[0] += mod.in_features * mod.out_features

    hooks = []
    for mod in net.modules():
        if isinstance(mod, nn.Conv2d):
            hooks.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            hooks.append(mod.register_forward_hook(fc_hook))
    try:
        net.eval()(torch.zeros(1, net.cfg.in_chans, height, width))
    finally:
        for h in hooks:
            h.remove()
    return sum(p.numel() for p in net.parameters()), macs[0]
