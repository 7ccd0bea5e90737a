"""The shipped Fashion-MNIST model at reduced precision against float32, on the whole test set.

    /usr/bin/python3 tools/fashion_precision.py [--demo build/demo/examples/fashion_demo] [--precision bf16]

Runs the C++ demo (examples/fashion, built by ./scripts/demo) twice, at --precision f32 and at the
precision asked for, each over the 10,000 test images (accuracy at scale 1.0, with --logits) and the
attention analysis over object scales 0.75-1.75 (attention.csv), and checks issue 14's bars:

  * bf16: top-1 >= 91.4% and >= 99.5% of the predictions identical to float32; every cell of the
    attention table (mean a[path 2] - a[path 1] per unit and scale) within 0.005 of float32;
  * int8: top-1 >= 91.0%, >= 99.0% identical, attention cells within 0.02.

The labels come from tools/fashion_data.py (Debian's dataset-fashion-mnist). Exit status 0 when every
check holds, 1 otherwise. Writes tools/fashion_precision_<precision>.json.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fashion_data as fd  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# precision -> (min top-1, min agreement with float32, max |attention cell difference|)
BARS = {"bf16": (0.914, 0.995, 0.005), "int8": (0.910, 0.990, 0.02)}


def run_demo(demo, model, precision, threads, tmp):
    """(logits [N, 10], {(unit, scale): mean attention difference}, seconds) of one demo run."""
    out = os.path.join(tmp, precision)
    logits_path = os.path.join(tmp, precision + ".npy")
    cmd = [demo, "--model", model, "--precision", precision, "--logits", logits_path, "--out", out]
    if threads:
        cmd += ["--threads", str(threads)]
    print("running:", " ".join(cmd), flush=True)
    t0 = time.time()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit("fashion_precision: %s failed (exit %d):\n%s" % (demo, proc.returncode, proc.stderr))
    seconds = time.time() - t0
    table = {}
    with open(os.path.join(out, "attention.csv")) as f:
        for row in csv.DictReader(f):
            table[(row["unit"], row["scale"])] = float(row["mean_attention_difference"])
    return np.load(logits_path), table, seconds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--demo", default=os.path.join(ROOT, "build", "demo", "examples", "fashion_demo"))
    p.add_argument("--model", default=os.path.join(ROOT, "models", "fashion_sknet.safetensors"))
    p.add_argument("--precision", default="bf16", choices=sorted(BARS))
    p.add_argument("--threads", type=int, default=0, help="demo threads (0: all)")
    p.add_argument("--out", default=None, help="JSON report (default tools/fashion_precision_<precision>.json)")
    a = p.parse_args(argv)
    if not os.path.exists(a.demo):
        sys.exit("fashion_precision: %s not found; build it first (./scripts/demo)" % a.demo)
    out_path = a.out or os.path.join(ROOT, "tools", "fashion_precision_%s.json" % a.precision)
    _, labels = fd.load("test")
    with tempfile.TemporaryDirectory() as tmp:
        ref, ref_table, ref_seconds = run_demo(a.demo, a.model, "f32", a.threads, tmp)
        low, low_table, low_seconds = run_demo(a.demo, a.model, a.precision, a.threads, tmp)
    if ref.shape != (len(labels), 10) or low.shape != ref.shape:
        sys.exit("fashion_precision: logits have shapes %r and %r, expected (%d, 10)" % (ref.shape, low.shape, len(labels)))
    if set(ref_table) != set(low_table):
        sys.exit("fashion_precision: the two attention tables have different cells")
    ref_pred, low_pred = ref.argmax(1), low.argmax(1)
    agreement = float((ref_pred == low_pred).mean())
    ref_acc, low_acc = float((ref_pred == labels).mean()), float((low_pred == labels).mean())
    cells = {"%s@%s" % k: low_table[k] - ref_table[k] for k in sorted(ref_table)}
    worst_cell = max(cells, key=lambda k: abs(cells[k]))
    min_acc, min_agree, max_cell = BARS[a.precision]
    checks = {
        "top1": low_acc >= min_acc,
        "agreement": agreement >= min_agree,
        "attention": abs(cells[worst_cell]) <= max_cell,
    }
    result = {
        "command": "/usr/bin/python3 tools/fashion_precision.py --precision %s" % a.precision
                   + (" --threads %d" % a.threads if a.threads else ""),
        "precision": a.precision,
        "images": int(len(labels)),
        "f32_accuracy": ref_acc,
        "accuracy": low_acc,
        "agreement_with_f32": agreement,
        "max_abs_logit_difference": float(np.abs(low - ref).max()),
        "max_abs_attention_cell_difference": abs(cells[worst_cell]),
        "worst_attention_cell": worst_cell,
        "attention_cell_differences": cells,
        "bars": {"min_top1": min_acc, "min_agreement": min_agree, "max_attention_cell": max_cell},
        "checks": checks,
        "demo_seconds_f32": round(ref_seconds, 1),
        "demo_seconds_low": round(low_seconds, 1),
        "pass": all(checks.values()),
    }
    with open(out_path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print("images %d: top-1 f32 %.2f%%, %s %.2f%% (need >= %.1f%%)" % (
        len(labels), 100 * ref_acc, a.precision, 100 * low_acc, 100 * min_acc))
    print("predictions identical to f32: %.2f%% (need >= %.1f%%)" % (100 * agreement, 100 * min_agree))
    print("attention table: max |cell difference| %.4f at %s (need <= %.3f)" % (
        abs(cells[worst_cell]), worst_cell, max_cell))
    print("wrote", os.path.relpath(out_path, ROOT))
    print("PASS" if result["pass"] else "FAIL")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
