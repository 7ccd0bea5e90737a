"""The paper's attention analysis (Li et al. 2019, Section 5) on the trained Fashion-MNIST SKNet.

    /usr/bin/python3 tools/fashion_attention.py

Loads models/fashion_sknet.safetensors (network config from its __metadata__), places every
test image at each scale of SCALES with the documented evaluation placement
(tools/fashion_data.py: place(images, scale, EVAL_SEED)), and reports per SK unit the
"mean attention difference"

    mean over test images and channels of  a[path 2] - a[path 1]

where path 1 is the 3x3 dilation-1 branch and path 2 the 3x3 dilation-2 branch (5x5 receptive
field, the "larger kernel"). Positive = more attention on the larger kernel. Also the top-1
accuracy per scale. Writes tools/fashion_attention_pytorch.json.

It also writes the fixtures of the C++ agreement test, tests/data/fashion/:
  sample_images.npy       uint8  [200, 28, 28]     first 200 test images
  sample_labels.npy       int64  [200]             their labels
  sample_inputs.npy       float32[200, 1, 64, 64]  normalised, placed at scale 1.0 (EVAL_SEED)
  sample_logits.npy       float32[200, 10]         PyTorch float32 logits on sample_inputs
  sample_predictions.npy  int64  [200]             argmax of sample_logits
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_data as fd  # noqa: E402
from sk_torch import SKNet, SKNetConfig, read_safetensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCALES = (0.75, 1.0, 1.25, 1.5, 1.75)
N_SAMPLE = 200


def config_from_metadata(md):
    ints = lambda s: tuple(int(v) for v in s.split(","))  # noqa: E731
    return SKNetConfig(layers=ints(md["layers"]), planes=ints(md["planes"]),
                       strides=ints(md["strides"]), paths=int(md["paths"]),
                       groups=int(md["groups"]), reduction=int(md["reduction"]),
                       min_width=int(md["min_width"]), base_width=int(md["base_width"]),
                       num_classes=int(md["num_classes"]), in_chans=int(md["in_chans"]),
                       stem_width=int(md["stem_width"]), stem=md["stem"],
                       branch_kernels=md.get("branch_kernels", "dilated"))


def load_model(path):
    tensors, md = read_safetensors(path)
    net = SKNet(config_from_metadata(md))
    net.load_state_dict(tensors, strict=True)
    net.eval()
    return net, md


@torch.no_grad()
def analyse(net, images, labels, scale, batch=500):
    """(accuracy, {unit: mean a[path2]-a[path1]}, {unit: mean a[path2]}) at `scale`."""
    diff_sum, a2_sum = {}, {}
    correct = 0
    for b in range(0, len(images), batch):
        x = fd.place(images[b:b + batch], scale, fd.EVAL_SEED, first=b)
        correct += int((net(x).argmax(1).numpy() == labels[b:b + batch]).sum())
        for name, a in net.attention.items():       # a: [N, M, C]
            a = a.double()
            diff_sum[name] = diff_sum.get(name, 0.0) + float((a[:, 1] - a[:, 0]).mean(1).sum())
            a2_sum[name] = a2_sum.get(name, 0.0) + float(a[:, 1].mean(1).sum())
    n = len(images)
    return (correct / n, {k: v / n for k, v in diff_sum.items()},
            {k: v / n for k, v in a2_sum.items()})


def write_samples(net, images, labels, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    imgs = np.ascontiguousarray(images[:N_SAMPLE]).astype(np.uint8)
    labs = np.ascontiguousarray(labels[:N_SAMPLE]).astype(np.int64)
    x = fd.place(imgs, 1.0, fd.EVAL_SEED)
    with torch.no_grad():
        logits = net(x).to(torch.float32).numpy()
        logits64 = net.double()(x.double()).numpy()
        net.float()
    pred = logits.argmax(1).astype(np.int64)
    np.save(os.path.join(out_dir, "sample_images.npy"), imgs)
    np.save(os.path.join(out_dir, "sample_labels.npy"), labs)
    np.save(os.path.join(out_dir, "sample_inputs.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(out_dir, "sample_logits.npy"), logits.astype(np.float32))
    np.save(os.path.join(out_dir, "sample_predictions.npy"), pred)
    top2 = np.sort(logits, axis=1)[:, -2:]
    return {
        "n": N_SAMPLE, "accuracy": float((pred == labs).mean()),
        "min_top1_top2_margin": float((top2[:, 1] - top2[:, 0]).min()),
        "max_abs_float32_vs_float64_logits": float(np.abs(logits - logits64).max()),
        "float64_same_predictions": bool((logits64.argmax(1) == pred).all()),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=os.path.join(ROOT, "models", "fashion_sknet.safetensors"))
    p.add_argument("--out", default=os.path.join(ROOT, "tools", "fashion_attention_pytorch.json"))
    p.add_argument("--samples", default=os.path.join(ROOT, "tests", "data", "fashion"))
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    net, md = load_model(a.model)
    te_x, te_y = fd.load("test")
    results = {}
    for s in SCALES:
        results[s] = analyse(net, te_x, te_y, s)
        print("scale %.2f (size %d): accuracy %.4f" % (s, fd.scaled_size(s), results[s][0]),
              flush=True)
    units = list(results[SCALES[0]][1].keys())

    print("\nmean attention difference a[dilation 2] - a[dilation 1], per SK unit "
          "(mean over %d test images and channels)" % len(te_x))
    head = "%-10s" % "unit" + "".join("%10s" % ("x%g" % s) for s in SCALES)
    print(head)
    for u in units:
        print("%-10s" % u + "".join("%+10.4f" % results[s][1][u] for s in SCALES))
    print("%-10s" % "accuracy" + "".join("%10.4f" % results[s][0] for s in SCALES))

    sample = write_samples(net, te_x, te_y, a.samples)
    print("\nsamples in %s: %s" % (os.path.relpath(a.samples, ROOT), json.dumps(sample)))

    record = {
        "model": os.path.relpath(os.path.abspath(a.model), ROOT),
        "config": {k: md[k] for k in ("layers", "planes", "strides", "paths", "groups",
                                      "reduction", "min_width", "base_width", "num_classes",
                                      "in_chans", "stem_width", "stem")},
        "definition": "per SK unit: mean over test images and channels of attention[path 2 "
                      "(3x3, dilation 2)] - attention[path 1 (3x3, dilation 1)]",
        "placement": "tools/fashion_data.py place(images, scale, eval_seed): size "
                     "floor(28*scale+0.5), bilinear (align_corners=False) unless 28, "
                     "splitmix64 offsets on a 64x64 canvas",
        "eval_seed": fd.EVAL_SEED, "n_images": int(len(te_x)),
        "scales": list(SCALES),
        "sizes": [fd.scaled_size(s) for s in SCALES],
        "units": units,
        "accuracy": {"%g" % s: results[s][0] for s in SCALES},
        "mean_attention_difference": {u: {"%g" % s: round(results[s][1][u], 6) for s in SCALES}
                                      for u in units},
        "mean_attention_path2": {u: {"%g" % s: round(results[s][2][u], 6) for s in SCALES}
                                 for u in units},
        "samples": sample,
    }
    with open(a.out, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    print("wrote %s" % os.path.relpath(a.out, ROOT))


if __name__ == "__main__":
    main()
