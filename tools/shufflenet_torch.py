"""Independent PyTorch reference for SK-ShuffleNetV2 (the SKNet paper's section 3.4) and ShuffleNetV2.

Written from the ShuffleNetV2 paper (Ma et al., ECCV 2018) and from reading torchvision's
``torchvision/models/shufflenetv2.py`` (structure and state_dict names), never from the C++ code.
torchvision is not installed here, so the plain network (``sk=False``) is this file's own copy of
torchvision's ``shufflenet_v2_x1_0``; its parameter count is checked against torchvision's published
2,278,604.

Network (1.0x): conv1 = 3x3 stride-2 conv 3 -> 24 + BN + ReLU (``conv1.0``, ``conv1.1``), 3x3
stride-2 max pool (padding 1), stages ``stage2``/``stage3``/``stage4`` of 4/8/4 units with 116/232/464
output channels, ``conv5`` = 1x1 conv -> 1024 + BN + ReLU, global average pool, ``fc``. A unit
(torchvision's InvertedResidual) with w = out / 2 channels per branch:

    stride 1: x = [x1 | x2] (chunk in two); out = shuffle([x1 | branch2(x2)])
    stride 2: out = shuffle([branch1(x) | branch2(x)])
    branch1: 0 depthwise 3x3 conv (stride, pad 1), 1 BN, 2 1x1 conv in -> w, 3 BN, 4 ReLU
    branch2: 0 1x1 conv -> w, 1 BN, 2 ReLU, 3 depthwise 3x3 conv (stride, pad 1), 4 BN,
             5 1x1 conv w -> w, 6 BN, 7 ReLU
    shuffle: channel shuffle with 2 groups (view [N, 2, C/2, H, W], transpose, flatten).

SK version (sknet's reading of "each 3x3 depthwise convolution replaced by an SK convolution"; the
paper does not publish the placement): branch2's depthwise conv *and its BN* become one depthwise SK
convolution ``branch2.3`` (``sk_torch.SKConv``: M paths of 3x3 conv with dilation m + 1, G = C = w,
each + BN + ReLU, timm's names paths.{m}.conv/bn, attn.fc_reduce/bn/fc_select; attention width
max(w // r, L)); index 4 stays unused so the other indices keep torchvision's names. branch1's
depthwise conv (downsampling units only, on the unit's whole input) stays a plain depthwise conv.
"""

from collections import OrderedDict
from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn as nn

from sk_torch import BN_EPS, SKConv

__all__ = ["ShuffleConfig", "ShuffleUnit", "SKShuffleNetV2", "channel_shuffle", "shufflenet_v2_1x",
           "TORCHVISION_X1_0_PARAMS"]

TORCHVISION_X1_0_PARAMS = 2_278_604  # torchvision's shufflenet_v2_x1_0 "num_params"


@dataclass(frozen=True)
class ShuffleConfig:
    layers: Tuple[int, ...] = (4, 8, 4)
    channels: Tuple[int, ...] = (116, 232, 464)  # output channels of stage2..4
    stem_width: int = 24
    head_width: int = 1024
    num_classes: int = 1000
    in_chans: int = 3
    sk: bool = True        # False: torchvision's plain ShuffleNetV2
    paths: int = 2
    reduction: int = 16    # the paper's r
    min_width: int = 32    # the paper's L

    def attn_width(self, c):
        return max(c // self.reduction, self.min_width)

    def metadata(self):
        return {"arch": "sk_shufflenetv2", "family": "sk_shufflenetv2",
                "layers": ",".join(map(str, self.layers)), "planes": ",".join(map(str, self.channels)),
                "strides": ",".join("2" for _ in self.layers), "in_chans": str(self.in_chans),
                "stem_width": str(self.stem_width), "head_width": str(self.head_width),
                "num_classes": str(self.num_classes), "paths": str(self.paths),
                "reduction": str(self.reduction), "min_width": str(self.min_width),
                "attn_widths": ",".join(str(self.attn_width(c // 2)) for c, n in zip(self.channels, self.layers)
                                        for _ in range(n))}


def channel_shuffle(x, groups=2):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


def _conv_bn(cin, cout, kernel, stride=1, padding=0, groups=1):
    return [nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=BN_EPS)]


class ShuffleUnit(nn.Module):
    def __init__(self, inp, oup, stride, cfg):
        super().__init__()
        w = oup // 2
        assert stride != 1 or inp == oup, (inp, oup, stride)
        self.stride = stride
        if stride > 1:
            self.branch1 = nn.Sequential(*_conv_bn(inp, inp, 3, stride, 1, groups=inp),
                                         *_conv_bn(inp, w, 1), nn.ReLU())
        else:
            self.branch1 = nn.Sequential()
        b2in = inp if stride > 1 else w
        mods = _conv_bn(b2in, w, 1) + [nn.ReLU()]
        self.has_sk = cfg.sk
        if cfg.sk:
            # indices as torchvision: 3 = the SK conv, 4 (BN) has no counterpart
            mods += [SKConv(w, w, paths=cfg.paths, groups=w, stride=stride, width=cfg.attn_width(w)),
                     nn.Identity()]
        else:
            mods += _conv_bn(w, w, 3, stride, 1, groups=w)
        mods += _conv_bn(w, w, 1) + [nn.ReLU()]
        self.branch2 = nn.Sequential(*mods)
        self.attention = None

    @property
    def last_bn(self):
        """The BN before the unit's output (for sk_torch.randomize_net_)."""
        return self.branch2[6]

    def _branch2(self, x):
        for m in self.branch2:
            if isinstance(m, SKConv):
                x, self.attention = m(x)
            else:
                x = m(x)
        return x

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self._branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self._branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class SKShuffleNetV2(nn.Module):
    """forward(x) -> logits; self.attention: {unit name: [N, M, C]} of the last forward."""

    def __init__(self, cfg=ShuffleConfig()):
        super().__init__()
        self.cfg = cfg
        self.conv1 = nn.Sequential(*_conv_bn(cfg.in_chans, cfg.stem_width, 3, 2, 1), nn.ReLU())
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inp = cfg.stem_width
        self._stage_names = []
        for s, (n, oup) in enumerate(zip(cfg.layers, cfg.channels)):
            units = [ShuffleUnit(inp, oup, 2, cfg)] + [ShuffleUnit(oup, oup, 1, cfg) for _ in range(n - 1)]
            name = "stage%d" % (s + 2)
            setattr(self, name, nn.Sequential(*units))
            self._stage_names.append(name)
            inp = oup
        self.conv5 = nn.Sequential(*_conv_bn(inp, cfg.head_width, 1), nn.ReLU())
        self.fc = nn.Linear(cfg.head_width, cfg.num_classes)
        self.attention = OrderedDict()

    def stages(self):
        return [getattr(self, n) for n in self._stage_names]

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        att = OrderedDict()
        for name, stage in zip(self._stage_names, self.stages()):
            for u, unit in enumerate(stage):
                x = unit(x)
                if unit.has_sk:
                    att["%s.%d" % (name, u)] = unit.attention
        self.attention = att
        x = self.conv5(x)
        return self.fc(x.mean(dim=(2, 3)))


def shufflenet_v2_1x(sk=True, **overrides):
    return SKShuffleNetV2(ShuffleConfig(sk=sk, **overrides))
