#!/usr/bin/python3
"""Golden data for examples/classify: torchvision's eval transform on synthetic images.

    /usr/bin/python3 tools/gen_classify_fixture.py [--out tests/data/classify] [--labels FILE]

Needs Debian's python3-torch, python3-torchvision (0.14) and python3-pil (Pillow 9.4). Writes to
--out, for each synthetic image NAME:

    NAME.png            the image (deterministic: gradients, shapes, hard edges, a noise patch)
    NAME_resized.png    Resize(256, InterpolationMode.BICUBIC) of the PIL image, as uint8 RGB
    NAME_input.npy      float32 [3, 224, 224]: the resized image through CenterCrop(224),
                        ToTensor() and Normalize(IMAGENET mean, std), i.e. timm's eval transform
                        for skresnext50_32x4d (crop_pct 0.875, bicubic)

landscape (320x240) shrinks to 341x256 (crop offset round(58.5) = 58), portrait (200x287) grows
to 256x367 (crop offset round(71.5) = 72). landscape_q90.jpg is the landscape image as a JPEG
(quality 90, 4:2:0) with landscape_q90_resized.png made from PIL's decoding of it; the C++ side
decodes it with stb_image, whose IDCT and colour conversion are not libjpeg's.

--labels FILE also writes the 1000 ImageNet-1k class names, one per line in class-index order,
from torchvision.models._meta._IMAGENET_CATEGORIES (Debian python3-torchvision 0.14.1; the
duplicates of the original synset words are disambiguated there: 134 "crane bird" / 517 "crane",
638 "maillot" / 639 "tank suit").
"""
import argparse
import os

import numpy as np
from PIL import Image, ImageDraw
import torch
from torchvision import transforms
from torchvision.transforms import InterpolationMode

RESIZE = 256  # floor(224 / 0.875)
CROP = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def synthesize(width, height, seed):
    """A deterministic RGB test card: smooth gradients (the common case), saturated shapes and
    one-pixel lines (the cubic filter's overshoot is clipped at 0 and 255), a checkerboard
    (aliasing when shrinking) and a small noise patch."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 255 * x / (width - 1)
    g = 255 * y / (height - 1)
    b = 127.5 + 127.5 * np.sin(2 * np.pi * (x + 2 * y) / 97.0)
    image = Image.fromarray(np.stack([r, g, b], -1).round().astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    w, h = width, height
    draw.ellipse([w * 0.10, h * 0.15, w * 0.45, h * 0.60], fill=(250, 20, 30), outline=(0, 0, 0), width=3)
    draw.rectangle([w * 0.55, h * 0.10, w * 0.90, h * 0.40], fill=(10, 10, 240))
    draw.polygon([(w * 0.6, h * 0.9), (w * 0.95, h * 0.55), (w * 0.7, h * 0.5)], fill=(255, 255, 0))
    for k in range(12):  # one-pixel lines, white and black
        colour = (255, 255, 255) if k % 2 == 0 else (0, 0, 0)
        draw.line([(w * 0.05 + 3 * k, h * 0.7), (w * 0.35 + 3 * k, h * 0.95)], fill=colour, width=1)
    pixels = np.asarray(image).copy()
    cy, cx = int(h * 0.62), int(w * 0.40)
    checker = ((np.arange(24)[:, None] // 2 + np.arange(32)[None, :] // 2) % 2 * 255).astype(np.uint8)
    pixels[cy:cy + 24, cx:cx + 32] = checker[:, :, None]
    rng = np.random.default_rng(seed)
    pixels[4:28, w - 36:w - 4] = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def golden(image, out_dir, name):
    resized = transforms.Resize(RESIZE, interpolation=InterpolationMode.BICUBIC)(image)
    resized.save(os.path.join(out_dir, name + "_resized.png"), optimize=True)
    tensor = transforms.Compose([
        transforms.CenterCrop(CROP),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])(resized)
    assert tensor.dtype == torch.float32 and tuple(tensor.shape) == (3, CROP, CROP)
    np.save(os.path.join(out_dir, name + "_input.npy"), tensor.numpy())
    return resized


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data", "classify"))
    parser.add_argument("--labels", help="also write the ImageNet-1k class names to this file")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    for name, (w, h), seed in [("landscape", (320, 240), 1), ("portrait", (200, 287), 2)]:
        image = synthesize(w, h, seed)
        path = os.path.join(args.out, name + ".png")
        image.save(path, optimize=True)
        with Image.open(path) as reread:  # what timm's loader does: open, convert("RGB")
            resized = golden(reread.convert("RGB"), args.out, name)
        print(f"{path}: {w}x{h} -> {resized.size[0]}x{resized.size[1]} -> {CROP}x{CROP}")

    jpeg = os.path.join(args.out, "landscape_q90.jpg")
    synthesize(320, 240, 1).save(jpeg, quality=90, subsampling=2)
    with Image.open(jpeg) as reread:
        resized = transforms.Resize(RESIZE, interpolation=InterpolationMode.BICUBIC)(reread.convert("RGB"))
    resized.save(os.path.join(args.out, "landscape_q90_resized.png"), optimize=True)
    print(f"{jpeg}: PIL-decoded and resized to {resized.size[0]}x{resized.size[1]}")

    if args.labels:
        from torchvision.models._meta import _IMAGENET_CATEGORIES as names
        assert len(names) == 1000 and names[0] == "tench" and names[999] == "toilet tissue"
        with open(args.labels, "w", encoding="utf-8") as f:
            f.write("".join(n + "\n" for n in names))
        print(f"{args.labels}: {len(names)} class names")


if __name__ == "__main__":
    main()
