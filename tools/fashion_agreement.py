"""Agreement of the C++ demo with PyTorch on the whole Fashion-MNIST test set.

    /usr/bin/python3 tools/fashion_agreement.py [--demo build/demo/examples/fashion_demo]

Runs the C++ demo (examples/fashion, built by ./scripts/demo) with ``--logits`` to get its
float32 logits for the 10,000 test images placed at scale 1.0, computes PyTorch's logits from
the same weights (models/fashion_sknet.safetensors) on the same inputs (tools/fashion_data.py
place(), the documented placement, which the C++ reproduces bit for bit at scale 1.0), and checks:

  * the predictions (argmax) agree on at least 99.9% of the images;
  * the two top-1 accuracies differ by at most 0.05% (5 images in 10,000).

Also prints the largest logit difference and the images where the predictions differ (with
PyTorch's top-1/top-2 margin: a disagreement on a near-tie is float rounding, not a bug).
Exit status 0 when both checks hold, 1 otherwise. Writes tools/fashion_agreement.json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_data as fd  # noqa: E402
from fashion_attention import load_model  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIN_AGREEMENT = 0.999
MAX_ACCURACY_GAP = 0.0005


@torch.no_grad()
def torch_logits(net, images, batch=500):
    out = []
    for b in range(0, len(images), batch):
        out.append(net(fd.place(images[b:b + batch], 1.0, fd.EVAL_SEED, first=b)).numpy())
    return np.concatenate(out).astype(np.float32)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--demo", default=os.path.join(ROOT, "build", "demo", "examples", "fashion_demo"))
    p.add_argument("--model", default=os.path.join(ROOT, "models", "fashion_sknet.safetensors"))
    p.add_argument("--threads", type=int, default=0, help="threads for both (0: all)")
    p.add_argument("--out", default=os.path.join(ROOT, "tools", "fashion_agreement.json"))
    a = p.parse_args(argv)
    if not os.path.exists(a.demo):
        sys.exit("fashion_agreement: %s not found; build it first (./scripts/demo)" % a.demo)
    if a.threads:
        torch.set_num_threads(a.threads)

    images, labels = fd.load("test")
    with tempfile.TemporaryDirectory() as tmp:
        logits_path = os.path.join(tmp, "logits.npy")
        cmd = [a.demo, "--model", a.model, "--logits", logits_path, "--out", os.path.join(tmp, "plots")]
        if a.threads:
            cmd += ["--threads", str(a.threads)]
        print("running:", " ".join(cmd), flush=True)
        t0 = time.time()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            sys.exit("fashion_agreement: %s failed (exit %d):\n%s" % (a.demo, proc.returncode, proc.stderr))
        cpp_seconds = time.time() - t0
        cpp = np.load(logits_path)
    if cpp.shape != (len(images), 10):
        sys.exit("fashion_agreement: C++ logits have shape %r, expected (%d, 10)" % (cpp.shape, len(images)))

    net, _ = load_model(a.model)
    t0 = time.time()
    ref = torch_logits(net, images)
    torch_seconds = time.time() - t0

    cpp_pred, ref_pred = cpp.argmax(1), ref.argmax(1)
    agree = float((cpp_pred == ref_pred).mean())
    cpp_acc, ref_acc = float((cpp_pred == labels).mean()), float((ref_pred == labels).mean())
    top2 = np.sort(ref, axis=1)[:, -2:]
    margins = top2[:, 1] - top2[:, 0]
    differ = np.nonzero(cpp_pred != ref_pred)[0]
    result = {
        "command": "/usr/bin/python3 tools/fashion_agreement.py" + (" --threads %d" % a.threads if a.threads else ""),
        "images": int(len(images)),
        "agreement": agree,
        "cpp_accuracy": cpp_acc,
        "pytorch_accuracy": ref_acc,
        "accuracy_gap": abs(cpp_acc - ref_acc),
        "max_abs_logit_difference": float(np.abs(cpp - ref).max()),
        "disagreements": [{"index": int(i), "cpp": int(cpp_pred[i]), "pytorch": int(ref_pred[i]),
                           "pytorch_top1_top2_margin": float(margins[i])} for i in differ],
        "cpp_seconds_incl_attention_analysis": round(cpp_seconds, 1),
        "pytorch_seconds": round(torch_seconds, 1),
        "torch": torch.__version__,
    }
    ok = agree >= MIN_AGREEMENT and abs(cpp_acc - ref_acc) <= MAX_ACCURACY_GAP
    result["pass"] = ok
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print("images %d  agreement %.4f%% (need >= %.1f%%)" % (len(images), 100 * agree, 100 * MIN_AGREEMENT))
    print("accuracy C++ %.2f%%  PyTorch %.2f%%  gap %.3f%% (need <= %.2f%%)" % (
        100 * cpp_acc, 100 * ref_acc, 100 * abs(cpp_acc - ref_acc), 100 * MAX_ACCURACY_GAP))
    print("max |logit difference| %.3g" % result["max_abs_logit_difference"])
    for d in result["disagreements"]:
        print("  image %(index)d: C++ %(cpp)d, PyTorch %(pytorch)d (PyTorch margin %(pytorch_top1_top2_margin).3g)" % d)
    print("wrote", os.path.relpath(a.out, ROOT))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
