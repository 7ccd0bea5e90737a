#!/usr/bin/python3
"""Compare the C++ `sknet run` command against PyTorch on full-size SKNets (on demand).

For each requested architecture and path count: build the PyTorch SKNet (1000 classes), fill it
with reproducible random weights (`randomize_sknet_`), save them as safetensors with timm's
names, save a random input [N, 3, S, S] as .npy, compute the PyTorch float32 reference
(eval, no_grad), run

    sknet run --arch A --paths M --weights W.safetensors --input X.npy --output Y.npy \\
              --attention-dir DIR

and compare: max |logit error| / max |reference logit| <= 1e-4, and per unit max |attention
error| <= 1e-5. The attention directory is expected to hold one float32 [N, M, C] array per
unit, either as DIR/<unit>.npy (e.g. DIR/layer1.0.npy) or as tensors named <unit> in
*.safetensors files in DIR.

Examples (from the repository root):

    /usr/bin/python3 tools/compare_full.py                         # sknet26 + sknet50, M=2
    /usr/bin/python3 tools/compare_full.py --arch sknet101 --paths 3
    /usr/bin/python3 tools/compare_full.py --reference float64     # against float64 PyTorch
    /usr/bin/python3 tools/compare_full.py --dry-run --check-f64   # PyTorch side only
    /usr/bin/python3 tools/compare_full.py --arch sknet50 --precision bf16 --logit-tol 5e-3 --attn-tol 5e-3

PyTorch's own float32 result differs from float64 by up to ~1e-5 in the attention of the deepest
nets (sknet101); --reference float64 removes that noise from the comparison.

The sknet binary is --sknet, else $SKNET_BIN, else build/release/apps/sknet. Exits non-zero if
any comparison fails (or the command fails / is missing, unless --dry-run).
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sk_torch import (PRESETS, SKNet, randomize_sknet_, read_safetensors,  # noqa: E402
                      sknet_config, write_safetensors)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BIN = os.path.join("build", "release", "apps", "sknet")


def load_attention(d, units):
    """{unit: np.ndarray} from DIR/<unit>.npy files or tensors in DIR/*.safetensors."""
    found = {}
    for f in sorted(glob.glob(os.path.join(d, "*.safetensors"))):
        tensors, _ = read_safetensors(f)
        for k, v in tensors.items():
            found[k] = v.numpy()
    for u in units:
        p = os.path.join(d, u + ".npy")
        if os.path.exists(p):
            found[u] = np.load(p)
    return found


def attention_spread(att):
    return min(float((a.max(axis=1) - a.min(axis=1)).mean()) for a in att.values())


def run_case(arch, paths, args, workdir):
    row = {"arch": arch, "M": paths, "rel": float("nan"), "att": float("nan"), "status": "FAIL",
           "t_torch": float("nan"), "t_sknet": float("nan"), "note": ""}
    seed = (args.seed + zlib.crc32(("%s/m%d" % (arch, paths)).encode())) & 0x7FFFFFFF
    cfg = sknet_config(arch, paths=paths, num_classes=1000)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    net = randomize_sknet_(SKNet(cfg), gen, calib_shape=(2, args.size, args.size)).eval()
    x = torch.randn(args.batch, cfg.in_chans, args.size, args.size, generator=gen,
                    dtype=torch.float32)
    # int8: the calibration images, 16 others from the same generator (never the compared input).
    calib = torch.randn(16, cfg.in_chans, args.size, args.size, generator=gen, dtype=torch.float32)
    t_init = time.perf_counter() - t0

    case = os.path.join(workdir, "%s_m%d" % (arch, paths))
    os.makedirs(case, exist_ok=True)
    wpath = os.path.join(case, "weights.safetensors")
    xpath = os.path.join(case, "input.npy")
    ypath = os.path.join(case, "logits.npy")
    adir = os.path.join(case, "attention")
    os.makedirs(adir, exist_ok=True)
    meta = dict(cfg.metadata())
    meta.update({"seed": str(seed), "generator": "tools/compare_full.py"})
    sd = {k: v.contiguous() for k, v in net.state_dict().items()}
    wsize = write_safetensors(wpath, sd, meta)
    np.save(xpath, x.numpy().astype("<f4"))

    with torch.no_grad():
        t0 = time.perf_counter()
        ref = net(x)
        row["t_torch"] = time.perf_counter() - t0
        ref_att = {k: v.numpy().copy() for k, v in net.attention.items()}
    ref = ref.numpy().copy()
    scale = float(np.abs(ref).max())
    assert np.isfinite(ref).all(), "non-finite reference logits"
    print("%s M=%d: seed %d, %s parameters, weights %.1f MB, init %.1fs; reference logits "
          "max|.| %.3f std %.3f, %d units, min attention spread %.2f"
          % (arch, paths, seed, format(sum(p.numel() for p in net.parameters()), ","),
             wsize / 1e6, t_init, scale, float(ref.std()), len(ref_att),
             attention_spread(ref_att)))

    y64 = a64 = None
    if args.check_f64 or args.reference == "float64":
        with torch.no_grad():
            t0 = time.perf_counter()
            net64 = net.double()
            y64 = net64(x.double()).numpy().copy()
            a64 = {k: v.numpy().copy() for k, v in net64.attention.items()}
            net.float()
            t64 = time.perf_counter() - t0
        r = float(np.abs(ref - y64).max()) / float(np.abs(y64).max())
        e = max(float(np.abs(ref_att[k] - a64[k]).max()) for k in a64)
        print("  PyTorch float32 vs float64 (%.1fs): logits rel %.2e, attention %.2e "
              "(tolerances %.0e / %.0e)" % (t64, r, e, args.logit_tol, args.attn_tol))
        if args.dry_run:
            row["rel"], row["att"], row["note"] = r, e, "PyTorch float32 vs float64"
        if args.reference == "float64":
            ref, ref_att, scale = y64, a64, float(np.abs(y64).max())

    if args.dry_run:
        row["status"] = "DRY"
        return row

    cmd = [args.sknet, "run", "--arch", arch, "--paths", str(paths), "--weights", wpath,
           "--input", xpath, "--output", ypath, "--attention-dir", adir, "--kernels", args.kernels]
    if args.precision != "f32":
        cmd += ["--precision", args.precision]
    if args.precision == "int8":
        cpath, rpath = os.path.join(case, "calibration.npy"), os.path.join(case, "ranges.json")
        np.save(cpath, calib.numpy().astype("<f4"))
        ccmd = [args.sknet, "calibrate", "--arch", arch, "--paths", str(paths), "--weights", wpath,
                "--inputs", cpath, "--output", rpath]
        print("  $ " + " ".join(ccmd))
        if subprocess.run(ccmd).returncode != 0:
            row["note"] = "sknet calibrate failed"
            return row
        cmd += ["--scales", rpath]
    print("  $ " + " ".join(cmd))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as ex:
        row["note"] = "cannot run %s: %s" % (args.sknet, ex)
        return row
    row["t_sknet"] = time.perf_counter() - t0
    if proc.stdout.strip():
        print("  | " + proc.stdout.strip().replace("\n", "\n  | "))
    if proc.returncode != 0:
        row["note"] = "sknet exited with %d" % proc.returncode
        return row
    if not os.path.exists(ypath):
        row["note"] = "no output file %s" % ypath
        return row
    y = np.load(ypath)
    if y.shape != ref.shape:
        row["note"] = "logits shape %s, expected %s" % (y.shape, ref.shape)
        return row
    row["rel"] = float(np.abs(y.astype(np.float64) - ref).max()) / scale
    att = load_attention(adir, list(ref_att))
    missing = [u for u in ref_att if u not in att]
    if missing:
        row["note"] = "attention missing for %d units (%s...)" % (len(missing), missing[0])
        return row
    worst, worst_unit = 0.0, ""
    for u, a in ref_att.items():
        if att[u].shape != a.shape:
            row["note"] = "attention %s shape %s, expected %s" % (u, att[u].shape, a.shape)
            return row
        e = float(np.abs(att[u].astype(np.float64) - a).max())
        if not e <= worst:
            worst, worst_unit = e, u
    row["att"] = worst
    ok = row["rel"] <= args.logit_tol and worst <= args.attn_tol
    row["status"] = "PASS" if ok else "FAIL"
    if not ok and worst > args.attn_tol:
        row["note"] = "worst attention unit %s" % worst_unit
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--arch", action="append", choices=sorted(PRESETS),
                    help="architecture (repeatable; default: sknet26 and sknet50)")
    ap.add_argument("--paths", action="append", type=int, choices=(2, 3),
                    help="number of SK paths M (repeatable; default: 2)")
    ap.add_argument("--size", type=int, default=224, help="input height = width (default 224)")
    ap.add_argument("--batch", type=int, default=2, help="batch size N (default 2)")
    ap.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    ap.add_argument("--sknet", default=os.environ.get("SKNET_BIN", DEFAULT_BIN),
                    help="the sknet command (default: $SKNET_BIN or %s)" % DEFAULT_BIN)
    ap.add_argument("--logit-tol", type=float, default=1e-4,
                    help="max |logit error| / max |logit| (default 1e-4)")
    ap.add_argument("--attn-tol", type=float, default=1e-5,
                    help="max |attention error| per unit (default 1e-5)")
    ap.add_argument("--dry-run", action="store_true",
                    help="only build, save and run the PyTorch side; do not call sknet")
    ap.add_argument("--reference", choices=("float32", "float64"), default="float32",
                    help="compare against PyTorch computing in float32 (default) or float64 "
                         "(same float32 weights and input)")
    ap.add_argument("--check-f64", action="store_true",
                    help="also report PyTorch float32 vs float64 error (slower)")
    ap.add_argument("--threads", type=int, default=0,
                    help="PyTorch threads (default: PyTorch's choice)")
    ap.add_argument("--kernels", choices=["fast", "reference"], default="fast",
                    help="sknet run --kernels: the float32 SIMD fast path (default) or the reference "
                         "kernels accumulating in double")
    ap.add_argument("--precision", choices=["f32", "bf16", "int8"], default="f32",
                    help="sknet run --precision (int8: calibrated first by `sknet calibrate` on 16 other "
                         "random inputs); pass the tolerances to check with --logit-tol / --attn-tol")
    ap.add_argument("--keep", metavar="DIR",
                    help="write the files to DIR and keep them (default: a temp dir, removed)")
    args = ap.parse_args()
    archs = args.arch or ["sknet26", "sknet50"]
    paths = args.paths or [2]
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if not args.dry_run:
        if os.path.sep not in args.sknet and shutil.which(args.sknet):
            args.sknet = shutil.which(args.sknet)
        elif not os.path.isabs(args.sknet) and not os.path.exists(args.sknet):
            args.sknet = os.path.join(ROOT, args.sknet)
        if not (os.path.isfile(args.sknet) and os.access(args.sknet, os.X_OK)):
            print("error: sknet command not found or not executable: %s "
                  "(build it, or pass --sknet / set SKNET_BIN, or use --dry-run)" % args.sknet)
            return 2

    if args.keep:
        workdir = os.path.abspath(args.keep)
        os.makedirs(workdir, exist_ok=True)
    else:
        workdir = tempfile.mkdtemp(prefix="sknet_compare_")
    rows = []
    try:
        for arch in archs:
            for m in paths:
                rows.append(run_case(arch, m, args, workdir))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    print("input [%d, 3, %d, %d]; sknet precision %s; reference PyTorch %s; tolerances: logits rel "
          "%.0e, attention abs %.0e" % (args.batch, args.size, args.size, args.precision, args.reference,
                                        args.logit_tol, args.attn_tol))
    hdr = "%-9s %2s %15s %15s %6s %9s %9s  %s" % ("arch", "M", "max rel logit", "max attn err",
                                                "result", "torch s", "sknet s", "note")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print("%-9s %2d %15.3e %15.3e %6s %9.3f %9.3f  %s"
              % (r["arch"], r["M"], r["rel"], r["att"], r["status"], r["t_torch"], r["t_sknet"],
                 r["note"]))
    failed = [r for r in rows if r["status"] not in ("PASS", "DRY")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
