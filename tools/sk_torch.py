"""Independent PyTorch reference for Selective Kernel convolutions (Li et al., CVPR 2019).

This module is the "other side" of sknet's golden tests: it is written against the paper and
PyTorch only, never against the C++ code. It provides

* ``SKConv``             -- Split / Fuse / Select, with timm-compatible parameter names,
* ``randomize_``         -- fills a module with non-trivial random weights and BN statistics,
* ``write_safetensors``  -- a small hand-written safetensors writer (F32, F64, I64),
* ``read_safetensors``   -- the matching reader, used to check the written files.

Parameter names (``state_dict`` keys) of ``SKConv``::

    paths.{m}.conv.weight                    [C_out, C_in/G, k, k]
    paths.{m}.bn.{weight,bias,running_mean,running_var,num_batches_tracked}
    attn.fc_reduce.weight                    [d, C_out, 1, 1]
    attn.bn.{weight,bias,running_mean,running_var,num_batches_tracked}
    attn.fc_select.weight                    [M*C_out, d, 1, 1]   (channel index = m*C_out + c)
"""

import json
import math
import struct

import numpy as np
import torch
import torch.nn as nn

BN_EPS = 1e-5

__all__ = [
    "BN_EPS",
    "SKConv",
    "branch_geometry",
    "attn_width",
    "randomize_",
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
                 stride=1, branch_kernels="dilated"):
        super().__init__()
        if paths < 1:
            raise ValueError("paths must be >= 1")
        if in_channels % groups or out_channels % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_paths = paths
        self.groups = groups
        self.reduction = reduction
        self.min_width = min_width
        self.stride = stride
        self.branch_kernels = branch_kernels
        self.width = attn_width(out_channels, reduction, min_width)
        branches = []
        for m in range(paths):
            k, dil, pad = branch_geometry(m, branch_kernels)
            branches.append(_Branch(in_channels, out_channels, k, dil, pad, groups, stride))
        self.paths = nn.ModuleList(branches)
        self.attn = _Attn(out_channels, paths, self.width)

    def forward(self, x):
        feats = torch.stack([p(x) for p in self.paths], dim=1)   # [N, M, C, H, W]
        u = feats.sum(dim=1)                                     # [N, C, H, W]
        n = x.shape[0]
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
