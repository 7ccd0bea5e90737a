"""Independent PyTorch reference for Selective Kernel convolutions (Li et al., CVPR 2019).

This module is the "other side" of sknet's golden tests: it is written against the paper and
PyTorch only, never against the C++ code. It provides

* ``SKConv``             -- Split / Fuse / Select, with timm-compatible parameter names
                            (optionally with an explicit attention width d and timm's
                            ``split_input``: path m reads input channels [m*Cin/M, (m+1)*Cin/M)),
* ``SEModule``           -- squeeze-and-excitation (timm's ``SEModule`` names: fc1, fc2 with bias),
* ``make_downsample``    -- the projection shortcut (1x1 conv with stride, or timm's avg_down),
* ``SKNet``              -- SKNet-26/50/101 (ResNeXt bottlenecks with an SK 3x3 conv), with the
                            state_dict names of timm's ``skresnext50_32x4d``,
* ``randomize_``         -- fills a module with non-trivial random weights and BN statistics,
* ``randomize_sknet_``   -- the same for a whole SKNet, scaled so activations stay O(1)
                            (``randomize_net_``: the same for any net of units with a ``last_bn``),
* ``write_safetensors``  -- a small hand-written safetensors writer (F32, F64, I64),
* ``read_safetensors``   -- the matching reader, used to check the written files.

Parameter names (``state_dict`` keys) of ``SKConv``::

    paths.{m}.conv.weight                    [C_out, C_in/G, k, k]  (C_in/(M*G) with split_input)
    paths.{m}.bn.{weight,bias,running_mean,running_var,num_batches_tracked}
    attn.fc_reduce.weight                    [d, C_out, 1, 1]
    attn.bn.{weight,bias,running_mean,running_var,num_batches_tracked}
    attn.fc_select.weight                    [M*C_out, d, 1, 1]   (channel index = m*C_out + c)
"""

import json
import math
import struct
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Tuple

import numpy as np
import torch
import torch.nn as nn

BN_EPS = 1e-5

__all__ = [
    "BN_EPS",
    "SKConv",
    "branch_geometry",
    "path_geometry",
    "attn_width",
    "randomize_",
    "SEModule",
    "make_downsample",
    "SKNetConfig",
    "ResidualUnit",
    "SKUnit",
    "make_stem",
    "StagedNet",
    "SKNet",
    "PRESETS",
    "sknet_config",
    "sknet26",
    "sknet50",
    "sknet101",
    "randomize_sknet_",
    "randomize_net_",
    "calibrate_bn_",
    "write_safetensors",
    "read_safetensors",
]


def branch_geometry(m, branch_kernels):
    """(kernel, dilation, padding) of branch m (0-based; the paper's branch m+1)."""
    if branch_kernels == "dilated":
        return 3, m + 1, m + 1
    if branch_kernels == "full":
        return 2 * (m + 1) + 1, 1, m + 1
    raise ValueError("branch_kernels must be 'dilated' or 'full', got %r" % (branch_kernels,))


def path_geometry(m, branch_kernels="dilated", kernels=(), dilations=()):
    """(kernel, dilation, padding) of path m (0-based) with optional per-path lists (the paper's
    section 4 ablations). Without `kernels`, branch_kernels decides (see branch_geometry); without
    `dilations`, a 3x3 path m has dilation m + 1 and a larger kernel dilation 1. Padding is
    dilation * (kernel - 1) / 2, so every path keeps the output size."""
    if not kernels and not dilations:
        return branch_geometry(m, branch_kernels)
    k = kernels[m] if kernels else branch_geometry(m, branch_kernels)[0]
    if k % 2 != 1:
        raise ValueError("path kernel sizes must be odd, got %d" % k)
    d = dilations[m] if dilations else (m + 1 if k == 3 else 1)
    return k, d, d * (k - 1) // 2


def attn_width(out_channels, reduction, min_width):
    """d = max(C / r, L) with integer division, as in the paper and timm."""
    return max(out_channels // reduction, min_width)


class _Branch(nn.Module):
    """One split path: grouped conv (no bias) -> BatchNorm -> ReLU."""

    def __init__(self, in_channels, out_channels, kernel, dilation, padding, groups, stride):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding,
                              dilation=dilation, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class _Attn(nn.Module):
    """Fuse (global pool -> fc_reduce -> BN -> ReLU) and the Select logits (fc_select)."""

    def __init__(self, channels, paths, width):
        super().__init__()
        self.fc_reduce = nn.Conv2d(channels, width, 1, bias=False)
        self.bn = nn.BatchNorm2d(width, eps=BN_EPS)
        self.relu = nn.ReLU(inplace=False)
        self.fc_select = nn.Conv2d(width, paths * channels, 1, bias=False)

    def forward(self, u):
        s = u.mean(dim=(2, 3), keepdim=True)           # [N, C, 1, 1]
        z = self.relu(self.bn(self.fc_reduce(s)))      # [N, d, 1, 1]
        return self.fc_select(z)                       # [N, M*C, 1, 1]


class SKConv(nn.Module):
    """Selective Kernel convolution. forward(x) returns (V, attention[N, M, C_out])."""

    def __init__(self, in_channels, out_channels, paths=2, groups=32, reduction=16, min_width=32,
                 stride=1, branch_kernels="dilated", width=None, split_input=False,
                 path_kernels=(), path_dilations=(), path_groups=(), aggregation="attention"):
        """`width`: the attention width d (default max(out_channels // reduction, min_width)).
        `split_input` (timm): path m convolves only input channels [m*Cin/M, (m+1)*Cin/M).
        The paper's ablations: `path_kernels`, `path_dilations`, `path_groups` (one per path;
        see path_geometry), `aggregation` "attention" or "sum" (V = sum_m U_m, no ``attn``
        module; the returned attention is then all ones)."""
        super().__init__()
        if paths < 1:
            raise ValueError("paths must be >= 1")
        path_in = in_channels
        if split_input:
            if in_channels % paths:
                raise ValueError("split_input needs in_channels divisible by paths")
            path_in = in_channels // paths
        for lst in (path_kernels, path_dilations, path_groups):
            if lst and len(lst) != paths:
                raise ValueError("per-path lists need one entry per path")
        if aggregation not in ("attention", "sum"):
            raise ValueError("aggregation must be attention or sum, got %r" % (aggregation,))
        path_g = tuple(path_groups) or (groups,) * paths
        if any(path_in % g or out_channels % g for g in path_g):
            raise ValueError("in_channels (per path) and out_channels must be divisible by groups")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_paths = paths
        self.groups = groups
        self.reduction = reduction
        self.min_width = min_width
        self.stride = stride
        self.branch_kernels = branch_kernels
        self.split_input = split_input
        self.aggregation = aggregation
        self.width = attn_width(out_channels, reduction, min_width) if width is None else width
        branches = []
        for m in range(paths):
            k, dil, pad = path_geometry(m, branch_kernels, path_kernels, path_dilations)
            branches.append(_Branch(path_in, out_channels, k, dil, pad, path_g[m], stride))
        self.paths = nn.ModuleList(branches)
        if aggregation == "attention":
            self.attn = _Attn(out_channels, paths, self.width)

    def forward(self, x):
        if self.split_input:
            parts = torch.split(x, self.in_channels // self.num_paths, dim=1)
        else:
            parts = [x] * self.num_paths
        feats = torch.stack([p(t) for p, t in zip(self.paths, parts)], dim=1)   # [N, M, C, H, W]
        u = feats.sum(dim=1)                                     # [N, C, H, W]
        n = x.shape[0]
        if self.aggregation == "sum":
            return u, torch.ones(n, self.num_paths, self.out_channels, dtype=x.dtype)
        logits = self.attn(u).view(n, self.num_paths, self.out_channels)  # [N, M, C]
        a = torch.softmax(logits, dim=1)
        v = (feats * a[:, :, :, None, None]).sum(dim=1)
        return v, a


@torch.no_grad()
def randomize_(module, generator, attn_scale=1.5):
    """Fill every conv / BN of `module` with reproducible, non-trivial random values.

    * conv weights: N(0, sqrt(2 / fan_in)) (Kaiming), so activations stay O(1);
      convs whose name ends in "fc_select" use std = attn_scale / sqrt(fan_in) so that the
      softmax attention is clearly not uniform. The default 1.5 (rather than ~3) is chosen
      because the pooled descriptor is all-positive, so fc_reduce/BN outputs are already
      O(1-2): with 3 a large share of attention weights saturate below 0.02, hiding errors
      in the de-selected branches. Conv biases (if any): N(0, 0.2).
    * BatchNorm: running_mean N(0, 0.2), running_var U(0.5, 2.0), weight U(0.5, 1.5),
      bias N(0, 0.2).
    Values are drawn in float32 and cast to the module's dtype, so a float64 copy of a module
    holds exactly the same (float32-representable) numbers.
    """
    g = generator

    def normal(shape, std):
        return torch.randn(shape, generator=g, dtype=torch.float32) * std

    def uniform(shape, lo, hi):
        return torch.rand(shape, generator=g, dtype=torch.float32) * (hi - lo) + lo

    for name, mod in module.named_modules():
        if isinstance(mod, nn.Conv2d):
            w = mod.weight
            fan_in = w[0].numel()
            if name.endswith("fc_select"):
                std = attn_scale / math.sqrt(fan_in)
            else:
                std = math.sqrt(2.0 / fan_in)
            w.copy_(normal(w.shape, std).to(w.dtype))
            if mod.bias is not None:
                mod.bias.copy_(normal(mod.bias.shape, 0.2).to(mod.bias.dtype))
        elif isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(normal((c,), 0.2).to(mod.running_mean.dtype))
            mod.running_var.copy_(uniform((c,), 0.5, 2.0).to(mod.running_var.dtype))
            mod.weight.copy_(uniform((c,), 0.5, 1.5).to(mod.weight.dtype))
            mod.bias.copy_(normal((c,), 0.2).to(mod.bias.dtype))
    return module


# ----------------------------------------------------------------------------- SKNet
#
# state_dict keys (identical to timm's skresnext50_32x4d):
#
#   conv1.weight                              stem conv [stem_width, in_chans, 7, 7] (3x3 "small")
#   bn1.{weight,bias,running_mean,running_var,num_batches_tracked}
#   layer{s}.{u}.conv1.conv.weight            1x1 [width, inplanes, 1, 1]
#   layer{s}.{u}.conv1.bn.*
#   layer{s}.{u}.conv2.<SKConv keys>          SKConv(width, width, stride) -- paths.{m}..., attn...
#   layer{s}.{u}.conv3.conv.weight            1x1 [4*planes, width, 1, 1]
#   layer{s}.{u}.conv3.bn.*
#   layer{s}.{u}.downsample.0.weight          1x1 stride s [4*planes, inplanes, 1, 1] (unit 0 only,
#   layer{s}.{u}.downsample.1.*               when stride != 1 or inplanes != 4*planes)
#   fc.weight, fc.bias                        [num_classes, 4*planes[-1]], [num_classes]


@dataclass(frozen=True)
class SKNetConfig:
    """Architecture of an SKNet (ResNeXt with SK bottlenecks). Defaults = SKNet-50, M=2."""
    layers: Tuple[int, ...] = (3, 4, 6, 3)
    planes: Tuple[int, ...] = (64, 128, 256, 512)
    strides: Tuple[int, ...] = (1, 2, 2, 2)
    paths: int = 2
    groups: int = 32
    reduction: int = 16
    min_width: int = 32
    base_width: int = 4
    num_classes: int = 1000
    in_chans: int = 3
    stem_width: int = 64
    stem: str = "imagenet"          # "imagenet" (7x7/2 conv + 3x3/2 max pool) or "small" (3x3/1)
    branch_kernels: str = "dilated"
    expansion: int = 4
    path_kernels: Tuple[int, ...] = ()     # the paper's ablations (SKConv): one per path, or ()
    path_dilations: Tuple[int, ...] = ()
    path_groups: Tuple[int, ...] = ()
    aggregation: str = "attention"         # attention | sum

    def __post_init__(self):
        if not (len(self.layers) == len(self.planes) == len(self.strides)) or not self.layers:
            raise ValueError("layers, planes and strides must have the same non-zero length")
        if self.stem not in ("imagenet", "small"):
            raise ValueError("stem must be 'imagenet' or 'small', got %r" % (self.stem,))

    def unit_width(self, planes):
        """ResNeXt bottleneck width: floor(planes * base_width / 64) * groups."""
        return (planes * self.base_width // 64) * self.groups

    def metadata(self):
        """String metadata describing the architecture (for safetensors headers)."""
        j = lambda t: ",".join(str(v) for v in t)  # noqa: E731
        return {
            "layers": j(self.layers), "planes": j(self.planes), "strides": j(self.strides),
            "paths": str(self.paths), "groups": str(self.groups),
            "reduction": str(self.reduction), "min_width": str(self.min_width),
            "base_width": str(self.base_width), "num_classes": str(self.num_classes),
            "in_chans": str(self.in_chans), "stem_width": str(self.stem_width),
            "stem": self.stem, "branch_kernels": self.branch_kernels,
        } | sk_ablation_metadata(self)


def sk_ablation_options(cfg):
    """The SKConv keyword arguments of a config's ablation fields (absent fields: defaults)."""
    return dict(path_kernels=tuple(getattr(cfg, "path_kernels", ())),
                path_dilations=tuple(getattr(cfg, "path_dilations", ())),
                path_groups=tuple(getattr(cfg, "path_groups", ())),
                aggregation=getattr(cfg, "aggregation", "attention"))


def sk_ablation_metadata(cfg):
    """Fixture / checkpoint metadata of the ablation fields, unless the SK convolution is the
    default M = 2 with dilated 3x3 paths: path_kernels, path_dilations and path_groups as the
    resolved per-path lists (so a reader needs no convention), aggregation."""
    o = sk_ablation_options(cfg)
    if not (o["path_kernels"] or o["path_dilations"] or o["path_groups"] or cfg.paths != 2
            or cfg.branch_kernels != "dilated" or o["aggregation"] != "attention"):
        return {}
    geo = [path_geometry(m, cfg.branch_kernels, o["path_kernels"], o["path_dilations"])
           for m in range(cfg.paths)]
    groups = o["path_groups"] or (cfg.groups,) * cfg.paths
    return {"path_kernels": ",".join(str(k) for k, _, _ in geo),
            "path_dilations": ",".join(str(d) for _, d, _ in geo),
            "path_groups": ",".join(str(g) for g in groups),
            "aggregation": o["aggregation"]}


PRESETS = {
    "sknet26": (2, 2, 2, 2),
    "sknet50": (3, 4, 6, 3),
    "sknet101": (3, 4, 23, 3),
}


def sknet_config(arch="sknet50", **overrides):
    """SKNetConfig of a preset ("sknet26", "sknet50", "sknet101") with optional overrides."""
    if arch not in PRESETS:
        raise ValueError("unknown arch %r (expected one of %s)" % (arch, ", ".join(PRESETS)))
    return replace(SKNetConfig(layers=PRESETS[arch]), **overrides)


class _ConvBN(nn.Module):
    """conv (no bias) -> BN [-> ReLU]; attributes `.conv` and `.bn` as timm's ConvNormAct."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0, act=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.act = act

    def forward(self, x):
        y = self.bn(self.conv(x))
        return torch.relu(y) if self.act else y


class SEModule(nn.Module):
    """Squeeze-and-excitation (Hu et al.), timm's ``SEModule``: x * sigmoid(fc2(ReLU(fc1(mean(x)))))
    with fc1 [rd, C, 1, 1] and fc2 [C, rd, 1, 1] 1x1 convolutions with bias."""

    def __init__(self, channels, rd_channels):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, rd_channels, 1, bias=True)
        self.fc2 = nn.Conv2d(rd_channels, channels, 1, bias=True)

    def forward(self, x):
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))


def make_downsample(inplanes, out, stride, avg_down=False):
    """The projection shortcut of a unit (timm's ``downsample_conv`` / ``downsample_avg``), or None
    when the unit keeps its shape (stride 1, inplanes == out).

    * plain:    Sequential(1x1 conv with the stride, BN)                     keys downsample.{0,1}
    * avg_down: Sequential(AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False), or
                Identity when stride == 1; 1x1 conv stride 1; BN)           keys downsample.{1,2}
    """
    if stride == 1 and inplanes == out:
        return None
    if not avg_down:
        return nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False),
                             nn.BatchNorm2d(out, eps=BN_EPS))
    pool = (nn.Identity() if stride == 1 else
            nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False))
    return nn.Sequential(pool, nn.Conv2d(inplanes, out, 1, bias=False),
                         nn.BatchNorm2d(out, eps=BN_EPS))


class ResidualUnit(nn.Module):
    """What every unit ends with: an optional SE module ``se`` on the residual branch, then the
    sum with the identity or the projection ``downsample`` (``make_downsample``), then ReLU."""

    def _add_tail(self, inplanes, out, stride, avg_down, se_width):
        self.se = SEModule(out, se_width) if se_width is not None else None
        self.downsample = make_downsample(inplanes, out, stride, avg_down)

    def _shortcut(self, x):
        """The shortcut; computed before the branch (so that ``calibrate_bn_`` draws the
        projection's BN statistics first, as the fixtures were generated)."""
        return x if self.downsample is None else self.downsample(x)

    def _residual(self, y, shortcut):
        if self.se is not None:
            y = self.se(y)
        return torch.relu(y + shortcut)


class SKUnit(ResidualUnit):
    """SK bottleneck: 1x1 -> SKConv 3x3 (stride s, G groups) -> 1x1 [-> SE], plus identity /
    projection.

    Options beyond SKNet (timm's skresnet50/50d and explicit widths): `attn_width` (d; default
    the config's rule), `split_input`, `avg_down` (see ``make_downsample``), `se_width` (an SE
    module ``se`` of that reduced width after conv3, before the residual add).

    forward(x) returns (y, attention[N, M, width]).
    """

    def __init__(self, inplanes, planes, stride, cfg, attn_width=None, split_input=False,
                 avg_down=False, se_width=None):
        super().__init__()
        width = cfg.unit_width(planes)
        out = cfg.expansion * planes
        self.conv1 = _ConvBN(inplanes, width, 1, act=True)
        self.conv2 = SKConv(width, width, paths=cfg.paths, groups=cfg.groups,
                            reduction=cfg.reduction, min_width=cfg.min_width, stride=stride,
                            branch_kernels=cfg.branch_kernels, width=attn_width,
                            split_input=split_input, **sk_ablation_options(cfg))
        self.conv3 = _ConvBN(width, out, 1, act=False)
        self._add_tail(inplanes, out, stride, avg_down, se_width)

    @property
    def last_bn(self):
        return self.conv3.bn

    def forward(self, x):
        shortcut = self._shortcut(x)
        y, a = self.conv2(self.conv1(x))
        return self._residual(self.conv3(y), shortcut), a


def make_stem(stem, in_chans, stem_width):
    """The stem convolution ``conv1`` and the channels after it (``bn1``'s width):

    * "imagenet": 7x7 stride 2 conv (padding 3) -> stem_width channels,
    * "small":    3x3 stride 1 conv (padding 1) -> stem_width channels,
    * "deep":     timm's deep stem, Sequential(3x3/2 conv -> stem_width, BN, ReLU, 3x3 conv ->
                  stem_width, BN, ReLU, 3x3 conv -> 2 * stem_width) (keys conv1.{0,1,3,4,6}).
    """
    def conv(cin, cout, k, stride):
        return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)

    if stem == "imagenet":
        return conv(in_chans, stem_width, 7, 2), stem_width
    if stem == "small":
        return conv(in_chans, stem_width, 3, 1), stem_width
    if stem == "deep":
        s = stem_width
        return nn.Sequential(conv(in_chans, s, 3, 2), nn.BatchNorm2d(s, eps=BN_EPS), nn.ReLU(),
                             conv(s, s, 3, 1), nn.BatchNorm2d(s, eps=BN_EPS), nn.ReLU(),
                             conv(s, 2 * s, 3, 1)), 2 * s
    raise ValueError("stem must be imagenet, small or deep, got %r" % (stem,))


class StagedNet(nn.Module):
    """The forward pass shared by SKNet, ResNeXt and the timm families: ``conv1`` -> ``bn1`` ->
    ReLU -> 3x3/2 max pool (padding 1; not for the "small" stem) -> the units of ``layer1`` ...
    (a unit returning (y, attention) has its attention recorded in ``self.attention`` under
    "layer{s}.{u}") -> global average pool -> ``fc``. Subclasses set ``cfg`` (with ``stem`` and
    ``layers``), ``conv1``, ``bn1``, ``layer1`` ... and ``fc``."""

    def stages(self):
        return [getattr(self, "layer%d" % s) for s in range(1, len(self.cfg.layers) + 1)]

    def forward(self, x):
        self.attention = OrderedDict()
        x = torch.relu(self.bn1(self.conv1(x)))
        if self.cfg.stem != "small":
            x = nn.functional.max_pool2d(x, 3, stride=2, padding=1)
        for s, stage in enumerate(self.stages(), 1):
            for u, unit in enumerate(stage):
                x = unit(x)
                if isinstance(x, tuple):
                    x, self.attention["layer%d.%d" % (s, u)] = x
        return self.fc(x.mean(dim=(2, 3)))


class SKNet(StagedNet):
    """SKNet classifier. forward(x) returns logits [N, num_classes] and fills
    ``self.attention`` (OrderedDict "layer{s}.{u}" -> attention [N, M, width] of that unit)."""

    def __init__(self, cfg=None):
        super().__init__()
        cfg = cfg or SKNetConfig()
        self.cfg = cfg
        self.conv1, inplanes = make_stem(cfg.stem, cfg.in_chans, cfg.stem_width)
        self.bn1 = nn.BatchNorm2d(inplanes, eps=BN_EPS)
        self.unit_names = []
        for s, (n, planes, stride) in enumerate(zip(cfg.layers, cfg.planes, cfg.strides), 1):
            units = []
            for u in range(n):
                units.append(SKUnit(inplanes, planes, stride if u == 0 else 1, cfg))
                inplanes = cfg.expansion * planes
                self.unit_names.append("layer%d.%d" % (s, u))
            self.add_module("layer%d" % s, nn.Sequential(*units))
        self.num_features = inplanes
        self.fc = nn.Linear(inplanes, cfg.num_classes, bias=True)
        self.attention = OrderedDict()


def sknet26(**overrides):
    return SKNet(sknet_config("sknet26", **overrides))


def sknet50(**overrides):
    return SKNet(sknet_config("sknet50", **overrides))


def sknet101(**overrides):
    return SKNet(sknet_config("sknet101", **overrides))


@torch.no_grad()
def randomize_sknet_(net, generator, attn_scale=1.5, last_bn_gamma=(0.2, 0.5),
                     calib_shape=(2, 96, 96)):
    """Reproducible non-trivial random weights for a whole SKNet, with O(1) activations.

    1. Every conv / BN as ``randomize_`` (Kaiming conv weights; fc_select std attn_scale/sqrt(d);
       BN weight U(0.5, 1.5), bias N(0, 0.2), running stats random).
    2. Each unit's last BN gamma (``conv3.bn.weight``) is redrawn U(*last_bn_gamma), so each
       unit adds a modest amount to the residual stream.
    3. The classifier gets weight N(0, 1/sqrt(features)) and bias N(0, 0.2).
    4. Calibration, so that activations stay O(1) at any depth: a random input
       [calib_shape[0], in_chans, calib_shape[1], calib_shape[2]] (drawn from `generator`) is
       run once in float64; just before each feature-map BN (every BN except the ``attn.bn``
       of the SK convs, whose input is one pooled vector per image) runs, its running stats
       are set from the per-channel batch mean mu and variance var of its actual input,
       perturbed: running_mean = mu + N(0, 0.2) * sqrt(var), running_var = var * U(0.5, 2).
       Without this, random running stats do not normalise, the residual stream grows
       geometrically with depth (std ~20 after SKNet-101) and the SK attention saturates.

    All values are float32-representable (drawn in float32 or rounded to float32), so a float64
    copy of the net holds exactly the same numbers. Call on a float32 or float64 net.
    """
    return randomize_net_(net, generator, attn_scale, last_bn_gamma, calib_shape)


@torch.no_grad()
def randomize_net_(net, generator, attn_scale=1.5, last_bn_gamma=(0.2, 0.5),
                   calib_shape=(2, 96, 96)):
    """``randomize_sknet_`` for any net with ``stages()`` (sequences of units that have a
    ``last_bn``: the BN before the residual add), ``fc`` and ``cfg.in_chans``: SKNet, ResNeXt
    and the timm families. Same draws in the same order for every such net."""
    g = generator
    randomize_(net, g, attn_scale=attn_scale)
    lo, hi = last_bn_gamma
    for stage in net.stages():
        for unit in stage:
            w = unit.last_bn.weight
            w.copy_((torch.rand(w.shape, generator=g, dtype=torch.float32) * (hi - lo) + lo)
                    .to(w.dtype))
    fc = net.fc
    fc.weight.copy_((torch.randn(fc.weight.shape, generator=g, dtype=torch.float32)
                     / math.sqrt(fc.in_features)).to(fc.weight.dtype))
    fc.bias.copy_((torch.randn(fc.bias.shape, generator=g, dtype=torch.float32) * 0.2)
                  .to(fc.bias.dtype))

    n, h, w = calib_shape
    x = torch.randn(n, net.cfg.in_chans, h, w, generator=g, dtype=torch.float32)
    calibrate_bn_(net, x, g, lambda name: ".attn." not in "." + name)
    if hasattr(net, "attention"):
        net.attention = OrderedDict()
    return net


@torch.no_grad()
def calibrate_bn_(net, x, generator, include=lambda name: True):
    """Set the running stats of every BatchNorm2d of `net` whose name passes `include` from its
    actual input on the batch `x`, perturbed with draws from `generator`: one float64 forward
    (eval mode); just before each such BN runs, running_mean = mu + N(0, 0.2) * sqrt(var) and
    running_var = var * U(0.5, 2), mu and var (biased, clamped at 1e-4) per channel over the
    batch. Values are rounded to float32; `net` keeps its dtype and training mode."""
    g = generator

    def calibrate(bn, inputs):
        (t,) = inputs
        mu = t.mean(dim=(0, 2, 3))
        var = t.var(dim=(0, 2, 3), unbiased=False).clamp_min(1e-4)
        c = bn.num_features
        dm = torch.randn((c,), generator=g, dtype=torch.float32).double() * 0.2
        sv = (torch.rand((c,), generator=g, dtype=torch.float32) * 1.5 + 0.5).double()
        bn.running_mean.copy_((mu + dm * var.sqrt()).float().to(bn.running_mean.dtype))
        bn.running_var.copy_((var * sv).float().to(bn.running_var.dtype))

    dtype = net.fc.weight.dtype
    was_training = net.training
    hooks = [mod.register_forward_pre_hook(calibrate) for name, mod in net.named_modules()
             if isinstance(mod, nn.BatchNorm2d) and include(name)]
    try:
        net.double().eval()
        net(x.double())
    finally:
        for hk in hooks:
            hk.remove()
        net.to(dtype).train(was_training)
    return net


# ----------------------------------------------------------------------------- safetensors

_DTYPES = {
    # safetensors name: (torch dtype, numpy little-endian dtype)
    "F32": (torch.float32, np.dtype("<f4")),
    "F64": (torch.float64, np.dtype("<f8")),
    "I64": (torch.int64, np.dtype("<i8")),
}
_TORCH_TO_ST = {v[0]: k for k, v in _DTYPES.items()}


def write_safetensors(path, tensors, metadata=None):
    """Write `tensors` (name -> torch.Tensor) to `path` in the safetensors format.

    Layout: u64 little-endian header size N, N bytes of UTF-8 JSON (padded with spaces to a
    multiple of 8), then the raw little-endian C-order tensor bytes packed back to back in
    the order of `tensors`. Metadata values must be strings. Returns the file size in bytes.
    """
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("metadata keys and values must be str: %r=%r" % (k, v))
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name, t in tensors.items():
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved")
        if not isinstance(t, torch.Tensor):
            raise TypeError("%s is not a torch.Tensor" % name)
        if t.dtype not in _TORCH_TO_ST:
            raise TypeError("%s: unsupported dtype %s" % (name, t.dtype))
        st = _TORCH_TO_ST[t.dtype]
        arr = np.ascontiguousarray(t.detach().cpu().numpy()).astype(_DTYPES[st][1], copy=False)
        raw = arr.tobytes(order="C")
        header[name] = {"dtype": st, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    js = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    js += b" " * ((-len(js)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for raw in blobs:
            f.write(raw)
    return 8 + len(js) + offset


def read_safetensors(path):
    """Read a safetensors file. Returns (tensors: dict name -> torch.Tensor, metadata: dict).

    The tensors dict keeps the order of the header. Checks that the data offsets tile the
    data section exactly (no holes, no overlaps) and that sizes match the shapes.
    """
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError("%s: too short" % path)
    (n,) = struct.unpack("<Q", buf[:8])
    if 8 + n > len(buf):
        raise ValueError("%s: header size %d exceeds file" % (path, n))
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    data = buf[8 + n:]
    metadata = header.pop("__metadata__", {}) or {}
    spans = []
    tensors = {}
    for name, info in header.items():
        st = info["dtype"]
        if st not in _DTYPES:
            raise ValueError("%s: %s has unsupported dtype %s" % (path, name, st))
        tdt, ndt = _DTYPES[st]
        shape = [int(s) for s in info["shape"]]
        b, e = (int(x) for x in info["data_offsets"])
        count = int(np.prod(shape)) if shape else 1
        if e - b != count * ndt.itemsize or b > e or e > len(data):
            raise ValueError("%s: %s has bad data_offsets %r" % (path, name, info["data_offsets"]))
        spans.append((b, e, name))
        arr = np.frombuffer(data, dtype=ndt, count=count, offset=b).reshape(shape)
        tensors[name] = torch.from_numpy(arr.astype(ndt.newbyteorder("="), copy=True))
        assert tensors[name].dtype == tdt
    pos = 0
    for b, e, name in sorted(spans):
        if b != pos:
            raise ValueError("%s: hole or overlap before %s" % (path, name))
        pos = e
    if pos != len(data):
        raise ValueError("%s: %d trailing bytes after the last tensor" % (path, len(data) - pos))
    return tensors, metadata
