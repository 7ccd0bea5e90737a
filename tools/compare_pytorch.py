#!/usr/bin/python3
"""Side-by-side speed comparison of the C++ `sknet` command and PyTorch (+ oneDNN), one run.

For every architecture x batch x threads configuration:

0. Architectures (--arch): every network `sknet --arch` knows (TORCH_MODELS below): sknet26,
   sknet50, sknet101 (tools/sk_torch.py), skresnet18, skresnet34, skresnet50, skresnet50d,
   seresnext50 (tools/families_torch.py), resnext26, resnext50, resnext101
   (tools/resnext_torch.py) and sk_shufflenetv2 (tools/shufflenet_torch.py); all with timm's
   (SK-ShuffleNetV2: torchvision's) state_dict names, 1000 classes, M=2 SK paths.
1. Correctness: the PyTorch net (eval) gets reproducible random weights (`randomize_net_`:
   Kaiming convs, non-trivial attention, BN statistics calibrated so activations stay O(1);
   redrawn from the next seed while some SK unit's attention is near uniform), saved with timm's names as safetensors, and a random input [B, 3, S, S] saved as .npy.
   `sknet run --arch A --threads T` must reproduce the PyTorch float32 logits:
   max |error| / max |logit| <= --logit-tol (1e-4), else FAIL.
2. Speed, alternating on a noisy shared machine: a PyTorch worker subprocess (this script with
   --worker; its own thread setting and memory) loads the same weights, compiles the net
   (torch.jit.script + optimize_for_inference; scripting these nets fails, so in practice
   torch.jit.trace + optimize_for_inference, which folds BN and uses oneDNN; trace + freeze
   as the last resort; the report names the mode of every arch) under no_grad, warms up; then
   --rounds times: R timed PyTorch calls (time.perf_counter), then `sknet bench --arch A
   --reps R` (its own random weights; weights do not change the speed; its per-rep
   "rep i: X ms" lines are used). The medians are over all rounds x reps of each side.
3. Peak memory (B=1, T=1, per architecture): max RSS of `sknet run` and of a PyTorch worker that
   loads the weights, compiles, warms up and runs the same inference once (/usr/bin/time -f %M
   when present, else os.wait4), plus the RSS of `python3 -c "import torch"` alone.

The Markdown report goes to stdout (progress to stderr) and, with --markdown FILE, to FILE.
Exits 1 if any logits check fails or a command fails.

Examples (from the repository root):

    /usr/bin/python3 tools/compare_pytorch.py                                  # full grid, 224x224
    /usr/bin/python3 tools/compare_pytorch.py --arch sknet50 --batch 1 --threads 1 2 \\
        --markdown /tmp/bench.md
    /usr/bin/python3 tools/compare_pytorch.py --arch sknet26 --batch 1 --threads 1 \\
        --reps 2 --rounds 1 --size 64                                         # quick smoke test
    /usr/bin/python3 tools/compare_pytorch.py --arch skresnet18 resnext50 seresnext50 --batch 1 \
        --threads 1 --reps 1 --rounds 1 --size 64 --no-memory                # other families

Precisions: --precision bf16 also times `sknet bench --precision bf16` in every round, right after
the float32 run (columns: its median, the median paired ratio bf16 / f32, img/s), checks `sknet run
--precision bf16` against PyTorch's float32 logits (max |err| / max |logit| <= 5e-3) and measures its
peak memory, e.g.

    /usr/bin/python3 tools/compare_pytorch.py --arch sknet50 --batch 1 8 --threads 1 2 --precision bf16

The sknet binary is --sknet, else $SKNET_BIN, else build/release/apps/sknet. --baseline BIN times a
second sknet binary (e.g. the previous commit's) in the same rounds, back to back with sknet
(sknet first in odd rounds, the baseline first in even ones), and adds its median, the ratio of
the two medians and the median over rounds of the paired per-round ratios sknet / baseline
(robust on a noisy host: both sides of a pair see the same load) to the table.

The paper's SK ablations: --path-kernels, --path-dilations, --path-groups and --aggregation (as
`sknet`'s flags) apply to every SK architecture, on both sides, e.g.

    /usr/bin/python3 tools/compare_pytorch.py --arch sknet50 --batch 1 --threads 1 2 \
        --path-kernels 3,5 --path-dilations 1,1                             # 3x3 + a true 5x5

The report names the host's CPU (model name and cpu family from /proc/cpuinfo).
"""

import argparse
import datetime
import gc
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
DEFAULT_BIN = os.path.join("build", "release", "apps", "sknet")
TIME_BIN = "/usr/bin/time"


# Logits check of `sknet run --precision P` against PyTorch float32: max |err| / max |logit| (issue 14's
# fidelity bar for bf16 on random-weight SKNet-50).
PRECISION_TOL = {"bf16": 5e-3}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- PyTorch models

def _sknet(arch, sk):
    from sk_torch import SKNet, sknet_config
    cfg = sknet_config(arch, paths=2, num_classes=1000, **sk)
    return SKNet(cfg), cfg.metadata()


def _resnext(arch, sk):
    from resnext_torch import ResNeXt, resnext_config, resnext_metadata
    if sk:
        raise ValueError("%s has no SK convolutions: no SK options apply" % arch)
    cfg = resnext_config(arch, num_classes=1000)
    return ResNeXt(cfg), resnext_metadata(cfg)


def _family(arch, sk):
    from families_torch import FamilyNet, family_config
    if sk and arch in ("seresnext50", "resnext29", "senet29"):
        raise ValueError("%s has no SK convolutions: no SK options apply" % arch)
    cfg = family_config(arch, paths=2, **sk)  # its own classes: 1000, or 100 for the CIFAR networks
    return FamilyNet(cfg), cfg.metadata()


def _shufflenet(arch, sk):
    from shufflenet_torch import ShuffleConfig, SKShuffleNetV2
    if sk:
        raise ValueError("%s: the SK ablation options apply to the ResNet-layout SK networks only" % arch)
    cfg = ShuffleConfig(num_classes=1000, paths=2)
    return SKShuffleNetV2(cfg), cfg.metadata()


# `sknet --arch` name -> builder(name) -> (PyTorch net, untrained; its safetensors metadata)
TORCH_MODELS = {
    "sknet26": _sknet, "sknet50": _sknet, "sknet101": _sknet,
    "skresnet18": _family, "skresnet34": _family, "skresnet50": _family, "skresnet50d": _family,
    "resnext26": _resnext, "resnext50": _resnext, "resnext101": _resnext,
    "seresnext50": _family, "sknet29": _family, "resnext29": _family, "senet29": _family,
    "sk_shufflenetv2": _shufflenet,
}


def input_size(arch, args):
    """--size, else the network's own side: 32 for the CIFAR networks, 224 otherwise."""
    if args.size:
        return args.size
    from families_torch import INPUT_SIZE
    return INPUT_SIZE.get(arch, 224)


# The SK ablation options: flag -> (config field, parse).
SK_FLAGS = {
    "--path-kernels": ("path_kernels", lambda v: tuple(int(x) for x in v.split(","))),
    "--path-dilations": ("path_dilations", lambda v: tuple(int(x) for x in v.split(","))),
    "--path-groups": ("path_groups", lambda v: tuple(int(x) for x in v.split(","))),
    "--aggregation": ("aggregation", str),
}


def sk_options(args):
    """(config overrides, `sknet` flags) of the SK ablation options given."""
    sk, flags = {}, []
    for flag, (field, parse) in SK_FLAGS.items():
        value = getattr(args, field)
        if value is not None:
            sk[field] = parse(value)
            flags += [flag, value]
    return sk, flags


def build_torch_model(arch, sk=None):
    """(PyTorch net of `arch` (1000 classes, or 100 for the CIFAR networks), M=2, with the SK
    options `sk` (config overrides); safetensors metadata of its architecture)."""
    return TORCH_MODELS[arch](arch, dict(sk or {}))


# ----------------------------------------------------------------------------- PyTorch worker

def load_weights_(net, path):
    """Stream a safetensors file straight into the parameters and buffers of `net` (strict).

    No intermediate copy of the whole file, so the worker's peak RSS is not inflated by the
    loader (fair to PyTorch in the memory comparison)."""
    import torch
    targets = dict(net.state_dict(keep_vars=True))
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
        header.pop("__metadata__", None)
        if set(header) != set(targets):
            missing = sorted(set(targets) - set(header))
            extra = sorted(set(header) - set(targets))
            raise ValueError("%s: missing %s, unexpected %s" % (path, missing[:3], extra[:3]))
        dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
        for name, info in header.items():
            t = targets[name]
            t = t.data if isinstance(t, torch.nn.Parameter) else t
            if list(t.shape) != list(info["shape"]) or dtypes.get(info["dtype"]) != t.dtype:
                raise ValueError("%s: %s is %s %s, expected %s %s" % (
                    path, name, info["dtype"], info["shape"], t.dtype, list(t.shape)))
            b, e = info["data_offsets"]
            f.seek(8 + n + b)
            view = memoryview(t.numpy()).cast("B")
            if e - b != len(view) or f.readinto(view) != len(view):
                raise ValueError("%s: %s: short or mis-sized data" % (path, name))


def compile_model(net, x, mode):
    """Returns (callable, description). mode: auto | script | trace | trace-freeze | eager."""
    import torch
    import warnings
    if mode in ("auto", "script"):
        try:
            return torch.jit.optimize_for_inference(torch.jit.script(net)), \
                "torch.jit.script + optimize_for_inference"
        except Exception as ex:  # noqa: BLE001 - any scripting error means "fall back"
            if mode == "script":
                raise
            first = (str(ex).strip().splitlines() or [type(ex).__name__])[-1].strip()
            log("  torch.jit.script failed (%s); falling back to torch.jit.trace" % first[:120])
    if mode == "eager":
        return net, "eager"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about self.attention
        traced = torch.jit.trace(net, x, check_trace=False)
    if mode in ("auto", "trace"):
        try:
            return torch.jit.optimize_for_inference(traced), \
                "torch.jit.trace + optimize_for_inference (script failed)" if mode == "auto" else \
                "torch.jit.trace + optimize_for_inference"
        except Exception as ex:  # noqa: BLE001
            if mode == "trace":
                raise
            log("  optimize_for_inference failed (%s); using torch.jit.freeze" % ex)
    return torch.jit.freeze(traced), "torch.jit.freeze(torch.jit.trace)"


def worker(spec):
    """PyTorch side, in its own process. Prints one JSON line when ready; then answers
    'run R' lines on stdin with one JSON line of R call times (ms); 'quit' ends."""
    threads = spec["threads"]
    import torch
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    out = sys.stdout
    sys.stdout = sys.stderr  # keep the JSON channel clean
    with torch.no_grad():
        net = build_torch_model(spec["arch"], {k: tuple(v) if isinstance(v, list) else v
                                               for k, v in spec.get("sk", {}).items()})[0]
        load_weights_(net, spec["weights"])
        net.eval()
        x = torch.from_numpy(np.load(spec["input"]))
        ref = None if spec.get("memory") else net(x).numpy().copy()
        model, desc = compile_model(net, x, spec["mode"])
        if desc != "eager":
            del net
            gc.collect()
        for _ in range(spec["warmup"]):
            model(x)
        y = model(x).numpy()
        ready = {"ready": True, "mode": desc, "threads": torch.get_num_threads()}
        if ref is not None:
            ready["jit_vs_eager"] = float(np.abs(y - ref).max() / max(np.abs(ref).max(), 1e-30))
        out.write(json.dumps(ready) + "\n")
        out.flush()
        if spec.get("memory"):
            return 0
        for line in sys.stdin:
            cmd = line.split()
            if not cmd or cmd[0] == "quit":
                break
            times = []
            for _ in range(int(cmd[1])):
                t0 = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - t0) * 1e3)
            out.write(json.dumps({"ms": times}) + "\n")
            out.flush()
    return 0


# ----------------------------------------------------------------------------- driver helpers

def worker_cmd(spec):
    return [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]


def worker_env(threads):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_peak_rss(cmd, env=None, cwd=None):
    """Runs cmd; returns (returncode, output, peak RSS in MB)."""
    with tempfile.TemporaryDirectory(prefix="sknet_rss_") as d:
        outp, memp = os.path.join(d, "out"), os.path.join(d, "rss")
        with open(outp, "w") as out:
            if os.access(TIME_BIN, os.X_OK):
                rc = subprocess.call([TIME_BIN, "-f", "%M", "-o", memp] + cmd, stdout=out,
                                     stderr=subprocess.STDOUT, env=env, cwd=cwd)
                with open(memp) as f:
                    nums = re.findall(r"^\d+$", f.read(), re.M)
                kb = int(nums[-1]) if nums else float("nan")
            else:
                p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
                _, status, ru = os.wait4(p.pid, 0)
                p.returncode = rc = os.waitstatus_to_exitcode(status)
                kb = ru.ru_maxrss
        with open(outp) as f:
            text = f.read()
    return rc, text, kb / 1024.0


# AMD's cpu family numbers (/proc/cpuinfo) -> microarchitecture
AMD_FAMILIES = {0x15: "Bulldozer family", 0x16: "Jaguar family", 0x17: "Zen / Zen+ / Zen 2",
                0x19: "Zen 3 / Zen 4", 0x1A: "Zen 5"}


def cpu_family(path="/proc/cpuinfo"):
    """The host's CPU family from /proc/cpuinfo (first processor), e.g. "AuthenticAMD cpu family
    26 (0x1a, Zen 5), model 2, stepping 1"; Arm: implementer / part; "?" if unreadable."""
    try:
        with open(path) as f:
            first = f.read().split("\n\n", 1)[0]
    except OSError:
        return "?"
    kv = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in first.splitlines()
                                              if ":" in line)}
    fam = kv.get("cpu family", "")
    if fam.isdigit():
        n = int(fam)
        name = AMD_FAMILIES.get(n) if kv.get("vendor_id") == "AuthenticAMD" else None
        text = "%s cpu family %d (%#x%s)" % (kv.get("vendor_id", "?"), n, n,
                                             ", " + name if name else "")
        return text + "".join(", %s %s" % (k, kv[k]) for k in ("model", "stepping") if k in kv)
    if "CPU implementer" in kv:
        return "Arm implementer %s, part %s, variant %s" % (
            kv["CPU implementer"], kv.get("CPU part", "?"), kv.get("CPU variant", "?"))
    return "?"


def machine_info():
    info = {"model": platform.processor() or "?", "cpus": str(os.cpu_count()),
            "family": cpu_family()}
    try:
        text = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout
        kv = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        kv = {k.strip(): v.strip() for k, v in kv.items()}
        info["model"] = kv.get("Model name", info["model"])
        cores = int(kv.get("Core(s) per socket", 0)) * int(kv.get("Socket(s)", 0))
        info["cpus"] = "%s logical CPUs, %s cores, %s thread(s) per core" % (
            kv.get("CPU(s)", "?"), cores or "?", kv.get("Thread(s) per core", "?"))
        flags = kv.get("Flags", "").split()
        isa = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx_vnni") if f in flags]
        info["isa"] = " ".join(isa)
        if kv.get("Hypervisor vendor"):
            info["cpus"] += ", VM (%s)" % kv["Hypervisor vendor"]
    except OSError:
        pass
    return info


def torch_info():
    import torch
    cfg = torch.__config__.show()
    dnn = re.search(r"(MKL-DNN|oneDNN)\s+v?([\w.]+)", cfg)
    cap = re.search(r"CPU capability usage:\s*(\S+)", cfg)
    return {"version": torch.__version__,
            "mkldnn": torch.backends.mkldnn.is_available(),
            "onednn_version": dnn.group(2) if dnn else "?",
            "cpu_capability": cap.group(1) if cap else "?"}


def median(v):
    return statistics.median(v) if v else float("nan")


def fmt(v, spec="%.2f"):
    return "n/a" if v is None or v != v else spec % v


class Case:
    """Files of one (arch, batch): weights, input, PyTorch float32 reference logits; `note`: a
    caveat about the weights for the report (or "")."""

    def __init__(self, arch, batch, weights, xpath, ref, note=""):
        self.arch, self.batch, self.weights, self.xpath, self.ref = arch, batch, weights, xpath, ref
        self.note = note


MIN_ATTENTION_SPREAD = 0.1  # as tools/gen_family_fixtures.py demands of its fixtures
MAX_DRAWS = 8


def draw_arch(arch, seed, batches, size, sk):
    """The randomized PyTorch net of `arch` from `seed`, its metadata, the inputs and float64
    reference logits per batch, and the smallest per-unit SK attention spread over the batches
    (max - min over the paths, mean over images and channels; None without SK units)."""
    import torch
    from gen_net_fixtures import attention_stats
    from sk_torch import randomize_net_
    net, meta = build_torch_model(arch, sk)
    net = randomize_net_(net, torch.Generator().manual_seed(seed), calib_shape=(2, size, size))
    net.eval()
    inputs, refs, spread = {}, {}, None
    for b in batches:
        g = torch.Generator().manual_seed((seed + 7919 * b) & 0x7FFFFFFF)
        inputs[b] = torch.randn(b, net.cfg.in_chans, size, size, generator=g, dtype=torch.float32)
        with torch.no_grad():
            refs[b] = net(inputs[b]).numpy().astype(np.float64)
        assert np.isfinite(refs[b]).all(), "non-finite reference logits"
        if net.attention and sk.get("aggregation", "attention") == "attention":
            s = attention_stats(net.attention)[0]
            spread = s if spread is None else min(spread, s)
    return net, meta, inputs, refs, spread


def prepare_arch(arch, batches, args, workdir):
    """Random weights (redrawn from the next seed while an SK unit's attention is near uniform,
    e.g. every attention feature of a narrow unit cut by the ReLU), inputs and references."""
    from sk_torch import write_safetensors
    base = (args.seed + zlib.crc32(("%s/m2" % arch).encode())) & 0x7FFFFFFF
    t0 = time.perf_counter()
    for draw in range(MAX_DRAWS):
        seed = (base + 1000003 * draw) & 0x7FFFFFFF
        net, meta, inputs, refs, spread = draw_arch(arch, seed, batches, input_size(arch, args), args.sk)
        if spread is None or spread >= MIN_ATTENTION_SPREAD:
            break
        log("%s: seed %d: an SK unit's attention is near uniform (spread %.3f < %.2f)%s"
            % (arch, seed, spread, MIN_ATTENTION_SPREAD,
               "; next seed" if draw + 1 < MAX_DRAWS else "; keeping it"))
    note = ""
    if spread is not None and spread < MIN_ATTENTION_SPREAD:
        note = "random weights: an SK unit's attention is near uniform (spread %.3f)" % spread
    d = os.path.join(workdir, arch)
    os.makedirs(d, exist_ok=True)
    wpath = os.path.join(d, "weights.safetensors")
    meta = dict(meta, seed=str(seed), generator="tools/compare_pytorch.py")
    write_safetensors(wpath, {k: v.contiguous() for k, v in net.state_dict().items()}, meta)
    cases = {}
    for b in batches:
        xpath = os.path.join(d, "input_b%d.npy" % b)
        np.save(xpath, inputs[b].numpy().astype("<f4"))
        cases[b] = Case(arch, b, wpath, xpath, refs[b], note)
    stats = "" if spread is None else ", min SK unit attention spread %.2f" % spread
    log("%s: seed %d, weights %.1f MB, references for batch %s in %.1fs (logits max |.| %.2f%s)"
        % (arch, seed, os.path.getsize(wpath) / 1e6, ",".join(map(str, batches)),
           time.perf_counter() - t0, max(np.abs(r).max() for r in refs.values()), stats))
    del net, inputs
    gc.collect()
    return cases


def check_logits(case, threads, args, workdir, measure_rss=False, precision="f32"):
    """Runs `sknet run` (at `precision`); returns dict(status, rel, note, rss_mb)."""
    ypath = os.path.join(workdir, case.arch, "logits_b%d_t%d_%s.npy" % (case.batch, threads, precision))
    cmd = [args.sknet, "run", "--arch", case.arch, "--weights", case.weights, "--input",
           case.xpath, "--output", ypath, "--threads", str(threads)] + args.sk_flags
    if precision != "f32":
        cmd += ["--precision", precision]
    res = {"status": "FAIL", "rel": float("nan"), "note": "", "rss_mb": float("nan")}
    log("  $ " + shlex.join(cmd))
    if measure_rss:
        rc, text, res["rss_mb"] = run_peak_rss(cmd)
    else:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        rc, text = p.returncode, p.stdout
    if rc != 0:
        res["note"] = "sknet run exited %d: %s" % (rc, text.strip().splitlines()[-1:] or "")
        return res
    y = np.load(ypath)
    if y.shape != case.ref.shape:
        res["note"] = "logits shape %s, expected %s" % (y.shape, case.ref.shape)
        return res
    res["rel"] = float(np.abs(y.astype(np.float64) - case.ref).max() / np.abs(case.ref).max())
    res["status"] = "PASS" if res["rel"] <= PRECISION_TOL.get(precision, args.logit_tol) else "FAIL"
    return res


def sknet_bench(arch, batch, threads, args, binary=None, precision="f32"):
    cmd = [binary or args.sknet, "bench", "--arch", arch, "--batch", str(batch), "--size", str(input_size(arch, args)),
           "--threads", str(threads), "--reps", str(args.reps)] + args.sk_flags
    if precision != "f32":
        cmd += ["--precision", precision]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (shlex.join(cmd), p.returncode, p.stdout.strip()))
    reps = [float(v) for v in re.findall(r"^rep \d+:\s*([0-9.eE+-]+)\s*ms", p.stdout, re.M)]
    med = re.search(r"^median_ms:\s*([0-9.eE+-]+)", p.stdout, re.M)
    if len(reps) != args.reps or not med:
        raise RuntimeError("unexpected `sknet bench` output:\n" + p.stdout)
    return reps, float(med.group(1)), p.stdout.strip().splitlines()[0]


class TorchWorker:
    def __init__(self, spec, errpath):
        self.err = open(errpath, "w+")
        self.p = subprocess.Popen(worker_cmd(spec), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, text=True, env=worker_env(spec["threads"]))
        self.ready = self._read()

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            self.p.wait()
            self.err.seek(0)
            tail = "\n".join(self.err.read().strip().splitlines()[-5:])
            raise RuntimeError("PyTorch worker exited %s:\n%s" % (self.p.returncode, tail))
        return json.loads(line)

    def run(self, reps):
        self.p.stdin.write("run %d\n" % reps)
        self.p.stdin.flush()
        return self._read()["ms"]

    def close(self):
        try:
            if self.p.poll() is None:
                self.p.stdin.write("quit\n")
                self.p.stdin.close()
                self.p.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()
        self.err.close()


def time_config(case, threads, args, workdir):
    """Alternating rounds; returns dict with torch/sknet(/baseline) rep lists, sknet's medians,
    the per-round paired ratios sknet / baseline, mode."""
    spec = {"arch": case.arch, "weights": case.weights, "input": case.xpath, "threads": threads,
            "warmup": args.warmup, "mode": args.torch_mode, "sk": args.sk}
    errpath = os.path.join(workdir, case.arch, "worker_b%d_t%d.log" % (case.batch, threads))
    w = TorchWorker(spec, errpath)
    res = {"mode": w.ready["mode"], "jit_vs_eager": w.ready.get("jit_vs_eager"),
           "torch": [], "sknet": [], "sknet_medians": [], "sknet_header": ""}
    try:
        for r in range(args.rounds):
            t = w.run(args.reps)
            res["torch"] += t
            if args.baseline and r % 2:  # back to back, the baseline first in even rounds
                b, bmed, _ = sknet_bench(case.arch, case.batch, threads, args, args.baseline)
            s, smed, header = sknet_bench(case.arch, case.batch, threads, args)
            if args.baseline and not r % 2:
                b, bmed, _ = sknet_bench(case.arch, case.batch, threads, args, args.baseline)
            res["sknet"] += s
            res["sknet_medians"].append(smed)
            res["sknet_header"] = header
            paired = ""
            for p in args.precision:  # right after the float32 run: paired ratios p / f32
                ps, pmed, _ = sknet_bench(case.arch, case.batch, threads, args, precision=p)
                res.setdefault(p, []).extend(ps)
                res.setdefault(p + "_paired", []).append(pmed / smed)
                paired += ", %s median %.2f ms (%.3fx f32)" % (p, pmed, pmed / smed)
            if args.baseline:
                res.setdefault("baseline", []).extend(b)
                res.setdefault("paired", []).append(smed / bmed)
                paired = ", baseline median %.2f ms, sknet / baseline %.3f" % (bmed, smed / bmed)
            log("  round %d/%d: torch median %.2f ms, sknet median %.2f ms%s"
                % (r + 1, args.rounds, median(t), smed, paired))
    finally:
        w.close()
    return res


def memory_pair(case, args, sknet_rss):
    spec = {"arch": case.arch, "weights": case.weights, "input": case.xpath, "threads": 1,
            "warmup": args.warmup, "mode": args.torch_mode, "memory": True, "sk": args.sk}
    rc, text, torch_rss = run_peak_rss(worker_cmd(spec), env=worker_env(1))
    if rc != 0:
        log("  PyTorch memory worker failed:\n" + text[-2000:])
        torch_rss = float("nan")
    return torch_rss, sknet_rss


# ----------------------------------------------------------------------------- report

def by_value(per_arch):
    """{arch: text} -> "arch, arch: text1; arch: text2", archs grouped by equal text."""
    groups = {}
    for arch, text in per_arch.items():
        groups.setdefault(text, []).append(arch)
    return "; ".join("%s: %s" % (", ".join(archs), text) for text, archs in groups.items())


def report(rows, mems, baseline_rss, args, minfo, tinfo, sknet_headers, modes):
    L = []
    L.append("## sknet vs PyTorch %s (CPU inference, float32)" % tinfo["version"])
    L.append("")
    L.append("- date: %s" % datetime.datetime.now().astimezone().isoformat(timespec="seconds"))
    L.append("- machine: %s; %s%s" % (minfo["model"], minfo["cpus"],
                                      ("; ISA: " + minfo["isa"]) if minfo.get("isa") else ""))
    L.append("- cpu family (/proc/cpuinfo): %s" % minfo["family"])
    L.append("- PyTorch %s, oneDNN (mkldnn) available: %s (v%s), CPU capability %s; PyTorch mode: %s"
             % (tinfo["version"], tinfo["mkldnn"], tinfo["onednn_version"],
                tinfo["cpu_capability"], by_value(modes) or "?"))
    L.append("- sknet: `%s` (%s)" % (args.sknet_display, by_value(sknet_headers) or "?"))
    if args.baseline:
        L.append("- baseline: `%s` (another sknet build, timed in the same rounds back to back "
                 "with sknet, alternating which goes first; paired = median over rounds of the "
                 "round's sknet median / baseline median)" % args.baseline)
    sizes = by_value({r["arch"]: "%d" % input_size(r["arch"], args) for r in rows})
    L.append("- input [B, 3, S, S] with S = %s; M=2 (SK networks), 1000 classes (CIFAR networks: 100); "
             "%d round(s) x %d reps per side, alternating PyTorch / sknet; medians over all %d reps; "
             "PyTorch warm-up %d calls" % (sizes, args.rounds, args.reps, args.rounds * args.reps, args.warmup))
    L.append("- logits check: `sknet run` vs PyTorch float32 eager, max |err| / max |logit| "
             "<= %.0e" % args.logit_tol)
    L.append("- load average at start / end: %s / %s" % args.loadavg)
    L.append("- command: `%s`" % args.cmdline)
    if args.sk_flags:
        L.append("- SK options (both sides): `%s`" % " ".join(args.sk_flags))
    if args.precision:
        L.append("- precisions: sknet float32 and %s (`sknet bench|run --precision P`), timed in the same "
                 "rounds right after the float32 run; `P / f32` = median over rounds of the round's "
                 "P median / float32 median; logits check at P: max |err| / max |logit| <= %s"
                 % (", ".join(args.precision), ", ".join("%s %.0e" % (p, PRECISION_TOL[p]) for p in args.precision)))
    L.append("")
    extra_head = " baseline ms | sknet / baseline | paired sknet / baseline |" if args.baseline else ""
    extra_head += "".join(" sknet %s ms | %s / f32 | %s img/s | %s logits |" % (p, p, p, p) for p in args.precision)
    L.append("| arch | batch | threads | PyTorch ms | sknet ms | sknet / PyTorch "
             "| PyTorch img/s | sknet img/s |%s logits check |" % extra_head)
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|%s%s---|"
             % ("---:|---:|---:|" if args.baseline else "", "---:|---:|---:|---|" * len(args.precision)))
    for r in rows:
        tm, sm = r["torch_ms"], r["sknet_ms"]
        extra = ""
        if args.baseline:
            bm = r.get("baseline_ms", float("nan"))
            extra = " %s | %s | %s |" % (fmt(bm), fmt(sm / bm, "%.3fx"),
                                         fmt(r.get("paired", float("nan")), "%.3fx"))
        for p in args.precision:
            pm, pc = r.get(p + "_ms", float("nan")), r.get(p + "_check", {"status": "?", "rel": float("nan")})
            extra += " %s | %s | %s | %s %s |" % (fmt(pm), fmt(r.get(p + "_paired", float("nan")), "%.3fx"),
                                                  fmt(1e3 * r["batch"] / pm, "%.1f"), pc["status"],
                                                  fmt(pc["rel"], "%.1e"))
        L.append("| %s | %d | %d | %s | %s | %s | %s | %s |%s %s %s |" % (
            r["arch"], r["batch"], r["threads"], fmt(tm), fmt(sm), fmt(sm / tm, "%.2fx"),
            fmt(1e3 * r["batch"] / tm, "%.1f"), fmt(1e3 * r["batch"] / sm, "%.1f"), extra,
            r["check"]["status"], fmt(r["check"]["rel"], "%.1e")))
    notes = [r for r in rows if r["note"]]
    if notes:
        L.append("")
        for r in notes:
            L.append("- %s b%d t%d: %s" % (r["arch"], r["batch"], r["threads"], r["note"]))
    if mems:
        L.append("")
        L.append("Peak memory (max RSS, batch 1, 1 thread; PyTorch = load weights, compile, "
                 "%d warm-up calls, 1 call; `python3 -c \"import torch\"` alone: %s MB):"
                 % (args.warmup, fmt(baseline_rss, "%.0f")))
        L.append("")
        L.append("| arch | PyTorch MB | sknet run MB | sknet / PyTorch |%s"
                 % "".join(" sknet run %s MB |" % p for p in args.precision))
        L.append("|---|---:|---:|---:|%s" % ("---:|" * len(args.precision)))
        for arch, (t, s, *ps) in mems.items():
            L.append("| %s | %s | %s | %s |%s" % (arch, fmt(t, "%.0f"), fmt(s, "%.0f"),
                                                  fmt(s / t, "%.2fx"), "".join(" %s |" % fmt(v, "%.0f") for v in ps)))
    return "\n".join(L) + "\n"


# ----------------------------------------------------------------------------- main

def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--worker":
        return worker(json.loads(sys.argv[2]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--arch", nargs="+", choices=list(TORCH_MODELS), metavar="ARCH",
                    default=["sknet26", "sknet50", "sknet101"],
                    help="architectures: %s (default sknet26 sknet50 sknet101)"
                    % " ".join(TORCH_MODELS))
    ap.add_argument("--batch", nargs="+", type=int, default=[1, 8], help="batch sizes")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="thread counts")
    ap.add_argument("--size", type=int, default=0,
                    help="input height = width (default: 224, 32 for the CIFAR networks)")
    ap.add_argument("--reps", type=int, default=10, help="timed calls per round and side")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    ap.add_argument("--warmup", type=int, default=3, help="PyTorch warm-up calls (default 3)")
    ap.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    ap.add_argument("--logit-tol", type=float, default=1e-4,
                    help="max |logit error| / max |logit| (default 1e-4)")
    ap.add_argument("--torch-mode", choices=("auto", "script", "trace", "trace-freeze", "eager"),
                    default="auto", help="how PyTorch runs (default auto: script + "
                    "optimize_for_inference, else trace + optimize_for_inference, else trace + "
                    "freeze)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    ap.add_argument("--sknet", default=os.environ.get("SKNET_BIN", DEFAULT_BIN),
                    help="the sknet command (default: $SKNET_BIN or %s)" % DEFAULT_BIN)
    ap.add_argument("--baseline", metavar="BIN",
                    help="another sknet binary (e.g. the previous commit) timed in the same rounds; "
                    "adds its median, the ratio of the medians and the median paired ratio")
    ap.add_argument("--precision", nargs="+", choices=sorted(PRECISION_TOL), default=[], metavar="P",
                    help="also time (and check, and measure the memory of) sknet at these precisions "
                    "(%s) in the same rounds, next to float32" % ", ".join(sorted(PRECISION_TOL)))
    ap.add_argument("--markdown", metavar="FILE", help="also write the report to FILE")
    ap.add_argument("--keep", metavar="DIR", help="keep weights/inputs/logs in DIR")
    for flag, (field, _) in SK_FLAGS.items():
        ap.add_argument(flag, dest=field, metavar="V",
                        help="SK ablation option for every SK arch, as sknet's %s" % flag)
    args = ap.parse_args()
    args.sk, args.sk_flags = sk_options(args)
    if args.size < 0:
        ap.error("--size must be >= 1 (or 0: each network's own size)")
    for name in ("reps", "rounds"):
        if getattr(args, name) < 1:
            ap.error("--%s must be >= 1" % name)
    if min(args.batch) < 1 or min(args.threads) < 1 or args.warmup < 0:
        ap.error("batch and threads must be >= 1, warmup >= 0")
    args.cmdline = shlex.join([sys.executable] + sys.argv)
    args.loadavg = ("%.2f %.2f %.2f" % os.getloadavg(), None)
    args.sknet_display = args.sknet
    if os.path.sep not in args.sknet and shutil.which(args.sknet):
        args.sknet = shutil.which(args.sknet)
    elif not os.path.isabs(args.sknet) and not os.path.exists(args.sknet):
        args.sknet = os.path.join(ROOT, args.sknet)
    args.sknet = os.path.abspath(args.sknet)
    if not (os.path.isfile(args.sknet) and os.access(args.sknet, os.X_OK)):
        log("error: sknet command not found or not executable: %s (build it: cmake --build "
            "build/release --target sknet_cli; or pass --sknet / set SKNET_BIN)" % args.sknet)
        return 2
    if args.baseline:
        args.baseline = os.path.abspath(args.baseline)
        if not (os.path.isfile(args.baseline) and os.access(args.baseline, os.X_OK)):
            log("error: --baseline binary not found or not executable: %s" % args.baseline)
            return 2
    if not args.no_memory and not os.access(TIME_BIN, os.X_OK):
        log("note: %s missing (Debian package `time`); measuring RSS with os.wait4" % TIME_BIN)

    import torch
    torch.set_num_threads(max(os.cpu_count() or 1, 1))
    minfo, tinfo = machine_info(), torch_info()
    workdir = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="sknet_vs_pt_")
    os.makedirs(workdir, exist_ok=True)
    rows, mems, modes, sknet_headers, failed = [], {}, {}, {}, False
    try:
        for arch in args.arch:
            need = sorted(set(args.batch) | ({1} if not args.no_memory else set()))
            cases = prepare_arch(arch, need, args, workdir)
            sknet_rss, precision_rss = float("nan"), {}
            for b in args.batch:
                for t in args.threads:
                    log("%s batch %d threads %d" % (arch, b, t))
                    mem_here = not args.no_memory and b == 1 and t == 1
                    row = {"arch": arch, "batch": b, "threads": t, "note": "",
                           "torch_ms": float("nan"), "sknet_ms": float("nan")}
                    row["check"] = check_logits(cases[b], t, args, workdir, measure_rss=mem_here)
                    if mem_here:
                        sknet_rss = row["check"]["rss_mb"]
                    for p in args.precision:
                        row[p + "_check"] = check_logits(cases[b], t, args, workdir, measure_rss=mem_here, precision=p)
                        if mem_here:
                            precision_rss[p] = row[p + "_check"]["rss_mb"]
                        log("  logits at %s: %s, rel err %.2e %s" % (
                            p, row[p + "_check"]["status"], row[p + "_check"]["rel"], row[p + "_check"]["note"]))
                        failed |= row[p + "_check"]["status"] != "PASS"
                    log("  logits: %s, rel err %.2e %s" % (row["check"]["status"],
                                                           row["check"]["rel"],
                                                           row["check"]["note"]))
                    notes = [n for n in (cases[b].note, row["check"]["note"]) if n]
                    try:
                        tr = time_config(cases[b], t, args, workdir)
                        row["torch_ms"], row["sknet_ms"] = median(tr["torch"]), median(tr["sknet"])
                        if args.baseline:
                            row["baseline_ms"] = median(tr["baseline"])
                            row["paired"] = median(tr["paired"])
                        for p in args.precision:
                            row[p + "_ms"] = median(tr[p])
                            row[p + "_paired"] = median(tr[p + "_paired"])
                        modes[arch] = tr["mode"]
                        sknet_headers[arch] = re.sub(
                            r"^arch \S+, batch \d+, \d+x\d+, threads \d+, ", "", tr["sknet_header"])
                        if tr["jit_vs_eager"] is not None and tr["jit_vs_eager"] > args.logit_tol:
                            notes.append("PyTorch compiled vs eager rel err %.1e"
                                         % tr["jit_vs_eager"])
                    except RuntimeError as ex:
                        notes.append(str(ex).strip().replace("\n", " | ")[:500])
                        failed = True
                    row["note"] = "; ".join(notes)
                    failed |= row["check"]["status"] != "PASS"
                    rows.append(row)
            if not args.no_memory:
                if not (1 in args.batch and 1 in args.threads):
                    log("%s: memory run (batch 1, threads 1)" % arch)
                    sknet_rss = check_logits(cases[1], 1, args, workdir, measure_rss=True)["rss_mb"]
                    for p in args.precision:
                        precision_rss[p] = check_logits(cases[1], 1, args, workdir, measure_rss=True,
                                                        precision=p)["rss_mb"]
                mems[arch] = memory_pair(cases[1], args, sknet_rss) + tuple(precision_rss.get(p, float("nan"))
                                                                           for p in args.precision)
                log("  peak RSS: PyTorch %.0f MB, sknet %.0f MB" % mems[arch][:2])
            del cases
            gc.collect()
        baseline = float("nan")
        if not args.no_memory:
            baseline = run_peak_rss([sys.executable, "-c", "import torch"])[2]
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    args.loadavg = (args.loadavg[0], "%.2f %.2f %.2f" % os.getloadavg())
    text = report(rows, mems, baseline, args, minfo, tinfo, sknet_headers, modes)
    sys.stdout.write(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
        log("wrote %s" % args.markdown)
    if failed:
        log("FAILED: a logits check or a command failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
