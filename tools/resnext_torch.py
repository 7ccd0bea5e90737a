"""Independent PyTorch reference for ResNeXt, the SKNet paper's baseline (Xie et al., CVPR 2017).

Like ``sk_torch.py`` this is the "other side" of sknet's golden tests: plain ``torch.nn``
modules written from the paper and the torchvision/timm naming conventions, never from the C++
code. The network is an SKNet (same config fields, ``sk_torch.SKNetConfig``) with each SK
convolution replaced by one grouped 3x3 convolution + BN + ReLU; ``paths``, ``reduction``,
``min_width`` and ``branch_kernels`` do not apply and are ignored.

state_dict keys (timm's / torchvision's ``resnext50_32x4d``)::

    conv1.weight                         stem [stem_width, in_chans, 7, 7] (3x3 for "small")
    bn1.{weight,bias,running_mean,running_var,num_batches_tracked}
    layer{s}.{u}.conv1.weight            1x1 [width, inplanes, 1, 1]
    layer{s}.{u}.bn1.*
    layer{s}.{u}.conv2.weight            3x3, stride of the unit, `groups` groups [width, width/G, 3, 3]
    layer{s}.{u}.bn2.*
    layer{s}.{u}.conv3.weight            1x1 [4*planes, width, 1, 1]
    layer{s}.{u}.bn3.*
    layer{s}.{u}.downsample.0.weight     1x1 with the unit's stride [4*planes, inplanes, 1, 1]
    layer{s}.{u}.downsample.1.*          (unit 0 only, when stride != 1 or inplanes != 4*planes)
    fc.weight, fc.bias                   [num_classes, 4*planes[-1]], [num_classes]

with width = floor(planes * base_width / 64) * groups.
"""

from dataclasses import replace

import torch
import torch.nn as nn

from sk_torch import BN_EPS, ResidualUnit, SKNetConfig, StagedNet, make_stem, randomize_net_

__all__ = ["RESNEXT_PRESETS", "resnext_config", "Bottleneck", "ResNeXt", "randomize_resnext_",
           "resnext_metadata"]

RESNEXT_PRESETS = {
    "resnext26": (2, 2, 2, 2),
    "resnext50": (3, 4, 6, 3),
    "resnext101": (3, 4, 23, 3),
}


def resnext_config(arch="resnext50", **overrides):
    """SKNetConfig of a ResNeXt preset (32x4d widths by default) with optional overrides."""
    if arch not in RESNEXT_PRESETS:
        raise ValueError("unknown arch %r (expected one of %s)" % (arch, ", ".join(RESNEXT_PRESETS)))
    return replace(SKNetConfig(layers=RESNEXT_PRESETS[arch]), **overrides)


def resnext_metadata(cfg):
    """String metadata of the fields a ResNeXt uses (for safetensors headers)."""
    j = lambda t: ",".join(str(v) for v in t)  # noqa: E731
    return {
        "family": "resnext", "layers": j(cfg.layers), "planes": j(cfg.planes),
        "strides": j(cfg.strides), "groups": str(cfg.groups), "base_width": str(cfg.base_width),
        "num_classes": str(cfg.num_classes), "in_chans": str(cfg.in_chans),
        "stem_width": str(cfg.stem_width), "stem": cfg.stem,
    }


class Bottleneck(ResidualUnit):
    """1x1 (BN, ReLU) -> grouped 3x3 with the stride (BN, ReLU) -> 1x1 (BN) [-> SE], plus the
    identity or a 1x1 projection (stride, BN), then ReLU.

    `se_width`: an SE module ``se`` of that reduced width after bn3, before the residual add
    (timm's SE-ResNeXt); `avg_down`: timm's average-pool projection (``make_downsample``)."""

    def __init__(self, inplanes, planes, stride, cfg, se_width=None, avg_down=False):
        super().__init__()
        width = cfg.unit_width(planes)
        out = cfg.expansion * planes
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width, eps=BN_EPS)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=cfg.groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width, eps=BN_EPS)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out, eps=BN_EPS)
        self._add_tail(inplanes, out, stride, avg_down, se_width)

    @property
    def last_bn(self):
        return self.bn3

    def forward(self, x):
        shortcut = self._shortcut(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        return self._residual(self.bn3(self.conv3(y)), shortcut)


class ResNeXt(StagedNet):
    """ResNeXt classifier: stem conv + BN + ReLU (+ 3x3/2 max pool for the ImageNet stem),
    bottleneck stages, global average pool, fc. forward(x) returns logits [N, num_classes]."""

    def __init__(self, cfg=None):
        super().__init__()
        cfg = cfg or resnext_config()
        self.cfg = cfg
        self.conv1, inplanes = make_stem(cfg.stem, cfg.in_chans, cfg.stem_width)
        self.bn1 = nn.BatchNorm2d(inplanes, eps=BN_EPS)
        for s, (n, planes, stride) in enumerate(zip(cfg.layers, cfg.planes, cfg.strides), 1):
            units = []
            for u in range(n):
                units.append(Bottleneck(inplanes, planes, stride if u == 0 else 1, cfg))
                inplanes = cfg.expansion * planes
            self.add_module("layer%d" % s, nn.Sequential(*units))
        self.fc = nn.Linear(inplanes, cfg.num_classes, bias=True)


@torch.no_grad()
def randomize_resnext_(net, generator, last_bn_gamma=(0.2, 0.5), calib_shape=(2, 96, 96)):
    """Reproducible non-trivial random weights for a ResNeXt with O(1) activations, as
    ``sk_torch.randomize_sknet_`` (``randomize_net_``): every conv / BN by ``randomize_``, each
    unit's ``bn3.weight`` redrawn U(*last_bn_gamma), fc weight N(0, 1/sqrt(features)) and bias
    N(0, 0.2), then every BN's running stats calibrated on a random float64 batch
    (``calibrate_bn_``). All values are float32-representable."""
    return randomize_net_(net, generator, last_bn_gamma=last_bn_gamma, calib_shape=calib_shape)
