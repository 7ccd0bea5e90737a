"""Fashion-MNIST for sknet's demo: IDX reading, canvas placement, normalisation.

Data: Debian package ``dataset-fashion-mnist``, gzip'd IDX files in
``/usr/share/datasets/fashion-mnist/`` ({train,t10k}-{images-idx3,labels-idx1}-ubyte.gz).
IDX: big-endian u32 magic (0x00000803 images, 0x00000801 labels), big-endian u32 dims
(count[, rows, cols]), then uint8 data in C order.

Canvas placement (the "object scale" experiment). Every 28x28 image is put on a CANVAS x CANVAS
(64x64) black canvas (pixel value 0 before normalisation):

* size  s = floor(28 * scale + 0.5)            (0.75 -> 21, 1.0 -> 28, 1.25 -> 35, 1.5 -> 42,
                                                 1.75 -> 49)
* the image, as float32 in [0, 255], is resized to s x s with
  ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` (no antialiasing).
  When s == 28 there is NO resampling: the uint8 pixels are copied unchanged.
* it is written at rows [top, top + s), columns [left, left + s), fully inside the canvas.

Evaluation placement, ``place(images, scale, seed, first)``: the offsets of test image i (its
0-based index in the test set; ``images[k]`` is test image ``first + k``) are, with all arithmetic modulo 2**64 on unsigned 64-bit integers,

    top_i  = splitmix64((seed << 32) + 2*i)     % (CANVAS - s + 1)
    left_i = splitmix64((seed << 32) + 2*i + 1) % (CANVAS - s + 1)

    splitmix64(x):  z = x + 0x9E3779B97F4A7C15
                    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
                    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
                    return z ^ (z >> 31)

so a C++ program reproduces the scale-1.0 inputs bit for bit (a plain 28x28 copy at integer
offsets) without any resampling code. EVAL_SEED (= 2024) is the seed used for every reported
accuracy and attention number; image i of the test set always gets the same position for a
given (scale, seed).

Normalisation (Fashion-MNIST training-set mean/std of x/255):

    x_norm = (x / 255 - MEAN) / STD,   MEAN = 0.2860, STD = 0.3530

evaluated in float32 in exactly this order: x / 255.0f, then - MEAN (as float32), then / STD
(as float32); e.g. multiplying by 1/255 instead can differ in the last bit. The background
(pixel 0) becomes -0.2860/0.3530 = -0.810198...

Training augmentation (``augment``, PyTorch only, not needed in C++): per image a scale drawn
uniformly in [SCALE_MIN, SCALE_MAX] = [0.75, 1.75] (so s in 21..49), a horizontal flip with
probability 1/2, and a position uniform over all positions fully inside the canvas, all drawn
from a numpy ``Generator(PCG64(seed))``.
"""

import gzip
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

DATA_DIR = "/usr/share/datasets/fashion-mnist"
CANVAS = 64
IMAGE = 28
MEAN = 0.2860
STD = 0.3530
SCALE_MIN = 0.75
SCALE_MAX = 1.75
EVAL_SEED = 2024
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

_MASK64 = (1 << 64) - 1


def read_idx(path):
    """Read a (gzip'd) IDX file of uint8 data into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        buf = f.read()
    if len(buf) < 4:
        raise ValueError("%s: too short" % path)
    zero, dtype, ndim = buf[0:2], buf[2], buf[3]
    if zero != b"\x00\x00" or dtype != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file" % path)
    dims = struct.unpack(">%dI" % ndim, buf[4:4 + 4 * ndim])
    count = int(np.prod(dims))
    data = np.frombuffer(buf, dtype=np.uint8, count=count, offset=4 + 4 * ndim)
    if len(buf) != 4 + 4 * ndim + count:
        raise ValueError("%s: size does not match dims %r" % (path, dims))
    return data.reshape(dims).copy()


def load(split, data_dir=DATA_DIR):
    """(images uint8 [N, 28, 28], labels int64 [N]) of split "train" (60000) or "test" (10000)."""
    prefix = {"train": "train", "test": "t10k"}[split]
    images = read_idx(os.path.join(data_dir, "%s-images-idx3-ubyte.gz" % prefix))
    labels = read_idx(os.path.join(data_dir, "%s-labels-idx1-ubyte.gz" % prefix))
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (IMAGE, IMAGE):
        raise ValueError("unexpected Fashion-MNIST shapes %r %r" % (images.shape, labels.shape))
    return images, labels.astype(np.int64)


def scaled_size(scale):
    """Side length in pixels of an image placed at `scale`: floor(28 * scale + 0.5)."""
    s = int(math.floor(IMAGE * scale + 0.5))
    if not 1 <= s <= CANVAS:
        raise ValueError("scale %r gives size %d, outside 1..%d" % (scale, s, CANVAS))
    return s


def splitmix64(x):
    """splitmix64 finaliser on a numpy uint64 array (wrapping arithmetic)."""
    z = (np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15))
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def eval_offsets(n, scale, seed=EVAL_SEED, first=0):
    """(top, left) int64 arrays [n] of the documented evaluation placement of images
    first .. first + n - 1."""
    s = scaled_size(scale)
    span = np.uint64(CANVAS - s + 1)
    base = np.uint64((int(seed) << 32) & _MASK64)
    i2 = np.arange(first, first + n, dtype=np.uint64) * np.uint64(2)
    with np.errstate(over="ignore"):
        top = splitmix64(base + i2) % span
        left = splitmix64(base + i2 + np.uint64(1)) % span
    return top.astype(np.int64), left.astype(np.int64)


def resize(images, size):
    """uint8 or float [N, 28, 28] -> float32 tensor [N, size, size] in 0..255 (bilinear,
    align_corners=False; an exact copy when size == 28)."""
    x = torch.as_tensor(np.asarray(images)).to(torch.float32)
    if size == IMAGE:
        return x
    return F.interpolate(x[:, None], size=(size, size), mode="bilinear",
                         align_corners=False)[:, 0]


def normalize(canvas):
    """float32 tensor of raw pixel values 0..255 -> normalised input (see module docstring)."""
    x = canvas.to(torch.float32) / torch.tensor(255.0, dtype=torch.float32)
    return (x - torch.tensor(MEAN, dtype=torch.float32)) / torch.tensor(STD, dtype=torch.float32)


def paste(resized, top, left):
    """float32 [N, s, s] pixels + per-image offsets -> raw canvas float32 [N, 1, 64, 64]."""
    n, s = resized.shape[0], resized.shape[1]
    canvas = torch.zeros((n, 1, CANVAS, CANVAS), dtype=torch.float32)
    for i in range(n):
        t, l = int(top[i]), int(left[i])
        canvas[i, 0, t:t + s, l:l + s] = resized[i]
    return canvas


def place(images, scale, seed=EVAL_SEED, first=0):
    """Evaluation inputs: every image at `scale`, documented seeded position.

    images uint8 [N, 28, 28], test images first .. first + N - 1 (the index picks the position)
    -> normalised float32 tensor [N, 1, 64, 64]."""
    images = np.asarray(images)
    s = scaled_size(scale)
    top, left = eval_offsets(images.shape[0], scale, seed, first)
    return normalize(paste(resize(images, s), top, left))


def augment(images, rng):
    """Training inputs: random scale in [0.75, 1.75], random flip, random position.

    images uint8 [N, 28, 28], rng numpy Generator -> normalised float32 tensor [N, 1, 64, 64]."""
    images = np.asarray(images)
    n = images.shape[0]
    scales = rng.uniform(SCALE_MIN, SCALE_MAX, size=n)
    flips = rng.random(n) < 0.5
    u_top = rng.random(n)
    u_left = rng.random(n)
    imgs = np.where(flips[:, None, None], images[:, :, ::-1], images)
    sizes = np.array([scaled_size(s) for s in scales])
    canvas = torch.zeros((n, 1, CANVAS, CANVAS), dtype=torch.float32)
    for s in np.unique(sizes):
        idx = np.nonzero(sizes == s)[0]
        r = resize(imgs[idx], int(s))
        span = CANVAS - int(s) + 1
        tops = np.minimum((u_top[idx] * span).astype(np.int64), span - 1)
        lefts = np.minimum((u_left[idx] * span).astype(np.int64), span - 1)
        for j, i in enumerate(idx):
            canvas[i, 0, tops[j]:tops[j] + s, lefts[j]:lefts[j] + s] = r[j]
    return normalize(canvas)


if __name__ == "__main__":
    tr_x, tr_y = load("train")
    te_x, te_y = load("test")
    print("train", tr_x.shape, np.bincount(tr_y), "test", te_x.shape, np.bincount(te_y))
    print("train mean/std of x/255: %.4f %.4f" % ((tr_x / 255.0).mean(), (tr_x / 255.0).std()))
    t, l = eval_offsets(5, 1.0)
    print("first scale-1.0 offsets (top, left):", list(zip(t.tolist(), l.tolist())))
