#!/usr/bin/python3
"""Generate sknet's file-format test corpus: malformed and valid .safetensors and .npy files.

Run from the repository root (Debian python3 with numpy and torch):

    /usr/bin/python3 tools/gen_malformed.py                   # (re)write the corpus
    /usr/bin/python3 tools/gen_malformed.py --check-npy F...  # np.load files (e.g. from write_npy)

Writes
  tests/data/malformed/safetensors/*.safetensors   one file per rule of the safetensors reader
  tests/data/malformed/npy/*.npy                   one file per rule of the .npy reader
  tests/data/malformed/expected.json               file name -> substring of the error message
  tests/data/valid_io/*                            valid files with known values

Deterministic: no randomness, no time stamps; re-running produces byte-identical files.
Valid tensors hold values[i] = i * 0.5 - 3 (in C order) unless noted otherwise.
"""

import io
import json
import os
import shutil
import struct
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
MALFORMED = os.path.join(DATA, "malformed")
VALID = os.path.join(DATA, "valid_io")
SIZE_BUDGET = 100_000


def formula(n):
    return np.arange(n, dtype=np.float64) * 0.5 - 3


# ----------------------------------------------------------------------------- safetensors

def st_bytes(header, data=b"", pad=True, raw_header=None, length=None):
    """A safetensors file from a header (dict -> compact JSON, or raw bytes) and a data section."""
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if pad and raw_header is None:
        h += b" " * ((8 - len(h) % 8) % 8)
    n = len(h) if length is None else length
    return struct.pack("<Q", n) + h + data


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def f32(n):
    return formula(n).astype("<f4").tobytes()


def raw_json(text):
    """Header bytes from JSON text, space-padded to a multiple of 8."""
    b = text.encode("utf-8") if isinstance(text, str) else text
    return b + b" " * ((8 - len(b) % 8) % 8)


W8 = entry("F32", [2], 0, 8)  # a valid 2-element F32 entry, used with f32(2)

# name -> (bytes, distinctive substring of sknet's error message)
SAFETENSORS_CASES = {
    "too_short": (b"\x08\x00\x00\x00\x00", "file too short"),
    "header_too_large": (struct.pack("<Q", 100_000_001) + b"{}      ", "exceeds the 100000000-byte limit"),
    "header_past_end": (struct.pack("<Q", 1000) + b'{"w":{}}', "runs past the end of the file"),
    "header_empty": (struct.pack("<Q", 0), "header is empty"),
    "header_invalid_utf8": (st_bytes(None, raw_header=raw_json(b'{"w\xff":{}}')), "not valid UTF-8"),
    "header_overlong_utf8": (st_bytes(None, raw_header=raw_json(b'{"\xc0\xaf":{}}')), "not valid UTF-8"),
    "header_invalid_json": (st_bytes(None, raw_header=raw_json('{"w": }')), "header is not valid JSON"),
    "header_trailing_text": (st_bytes(None, raw_header=raw_json("{} x")), "header is not valid JSON"),
    "header_nul_after_json": (st_bytes(None, raw_header=raw_json(b'{}\x00 "x"')), "header contains a NUL byte"),
    "header_leading_space": (st_bytes(None, raw_header=raw_json(" {}")), "header must start with '{'"),
    "header_array": (st_bytes(None, raw_header=raw_json("[]")), "header must start with '{'"),
    "duplicate_key": (st_bytes(None, raw_header=raw_json(
        '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
        '"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'), data=f32(2)), "duplicate key 'w'"),
    "duplicate_field": (st_bytes(None, raw_header=raw_json(
        '{"w":{"dtype":"F32","dtype":"F64","shape":[2],"data_offsets":[0,8]}}'), data=f32(2)),
        "tensor 'w': duplicate field 'dtype'"),
    "entry_not_object": (st_bytes({"w": [0, 8]}, f32(2)), "tensor 'w': entry must be a JSON object"),
    "entry_missing_field": (st_bytes({"w": {"dtype": "F32", "shape": [2]}}, f32(2)),
                            "missing field 'data_offsets'"),
    "entry_extra_field": (st_bytes({"w": dict(W8, extra=1)}, f32(2)), "unexpected field 'extra'"),
    "dtype_not_string": (st_bytes({"w": dict(W8, dtype=32)}, f32(2)), "dtype must be a string"),
    "dtype_unknown": (st_bytes({"w": dict(W8, dtype="I32")}, f32(2)), "unsupported dtype 'I32'"),
    "dtype_lowercase": (st_bytes({"w": dict(W8, dtype="f32")}, f32(2)), "unsupported dtype 'f32'"),
    "shape_not_array": (st_bytes({"w": dict(W8, shape=2)}, f32(2)), "shape must be an array"),
    "shape_negative": (st_bytes({"w": dict(W8, shape=[-2])}, f32(2)), "element 0 is number -2"),
    "shape_float": (st_bytes({"w": dict(W8, shape=[2.0])}, f32(2)), "element 0 is number 2.0"),
    "shape_dim_too_large": (st_bytes({"w": dict(W8, shape=[2**63])}, f32(2)), "exceeds the int64 range"),
    "shape_overflow": (st_bytes({"w": dict(W8, shape=[2**32, 2**32])}, f32(2)), "element count exceeds 2^63 - 1"),
    "shape_overflow_with_zero": (st_bytes({"w": entry("F32", [0, 2**40, 2**40], 0, 0)}),
                                 "element count exceeds 2^63 - 1"),
    "byte_size_overflow": (st_bytes({"w": dict(W8, shape=[2**62])}, f32(2)), "byte size exceeds"),
    "offsets_not_array": (st_bytes({"w": dict(W8, data_offsets=8)}, f32(2)),
                          "data_offsets must be two non-negative integers"),
    "offsets_three": (st_bytes({"w": dict(W8, data_offsets=[0, 4, 8])}, f32(2)),
                      "data_offsets must be two non-negative integers"),
    "offsets_negative": (st_bytes({"w": dict(W8, data_offsets=[-8, 0])}, f32(2)),
                         "data_offsets must be two non-negative integers"),
    "offsets_reversed": (st_bytes({"w": entry("F32", [0], 8, 0)}, f32(2)), "begin <= end"),
    "byte_size_mismatch": (st_bytes({"w": entry("F32", [2], 0, 12)}, f32(3)),
                           "byte size (end - begin) does not match shape and dtype: expected 8"),
    "offsets_out_of_range": (st_bytes({"w": entry("F32", [2], 0, 8)}, f32(1)), "out of range"),
    "overlap": (st_bytes({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, f32(3)),
                "tensors 'a' [0, 8] and 'b' [4, 12] overlap"),
    "same_offsets": (st_bytes({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 0, 8)}, f32(2)), "overlap"),
    "hole": (st_bytes({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 8, 12)}, f32(3)),
             "hole in the data section: bytes [4, 8)"),
    "hole_at_start": (st_bytes({"a": entry("F32", [1], 4, 8)}, f32(2)), "hole in the data section: bytes [0, 4)"),
    "trailing_bytes": (st_bytes({"a": entry("F32", [1], 0, 4)}, f32(2)), "trailing bytes after the last tensor"),
    "no_tensors_with_data": (st_bytes({}, f32(2)), "no tensors, but the data section holds 8 bytes"),
    "metadata_not_object": (st_bytes({"__metadata__": "x", "w": W8}, f32(2)), "__metadata__ must be an object"),
    "metadata_value_not_string": (st_bytes({"__metadata__": {"epoch": 3}, "w": W8}, f32(2)),
                                  "__metadata__ value for key 'epoch' must be a string"),
    "metadata_duplicate_key": (st_bytes(None, raw_header=raw_json(
        '{"__metadata__":{"a":"1","a":"2"}}')), "__metadata__: duplicate field 'a'"),
}


# ----------------------------------------------------------------------------- npy

def npy_save(arr, version=None):
    f = io.BytesIO()
    if version is None:
        np.save(f, arr, allow_pickle=True)
    else:
        np.lib.format.write_array(f, arr, version=version, allow_pickle=True)
    return f.getvalue()


def npy_raw(header, data=b"", version=(1, 0), pad=True, length=None):
    """A .npy file with a hand-written header (padded to 64 like numpy unless pad=False)."""
    h = header.encode("latin1")
    pre = 10 if version[0] == 1 else 12
    if pad:
        h += b" " * ((64 - (pre + len(h) + 1) % 64) % 64) + b"\n"
    n = len(h) if length is None else length
    size = struct.pack("<H", n) if version[0] == 1 else struct.pack("<I", n)
    return b"\x93NUMPY" + bytes(version) + size + h + data


def hdr(descr="'<f4'", fortran="False", shape="(2,)"):
    return "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)


F4x2 = formula(2).astype("<f4")

NPY_CASES = {
    "bad_magic": (b"\x93NUMPZ\x01\x00" + npy_save(F4x2)[8:], "not a .npy file"),
    "too_short": (b"\x93NUMPY\x01", "file too short"),
    "preamble_too_short": (b"\x93NUMPY\x02\x00\x10\x00", "file too short"),
    "version_4": (npy_raw(hdr(), F4x2.tobytes(), version=(4, 0)), "unsupported .npy format version 4.0"),
    "version_1_1": (npy_raw(hdr(), F4x2.tobytes(), version=(1, 1)), "unsupported .npy format version 1.1"),
    "header_past_end": (npy_raw(hdr(), b"", length=4000), "runs past the end of the file"),
    "header_past_end_v2": (npy_raw(hdr(), b"", version=(2, 0), length=0xFFFFFFF0), "runs past the end of the file"),
    "header_not_dict": (npy_raw("[1, 2]", F4x2.tobytes()), "expected the header dict to open with '{'"),
    "header_syntax": (npy_raw("{'descr' '<f4', 'fortran_order': False, 'shape': (2,), }", F4x2.tobytes()),
                      "expected ':' after key 'descr'"),
    "header_unterminated_string": (npy_raw("{'descr': '<f4}", F4x2.tobytes()), "unterminated string"),
    "header_trailing_text": (npy_raw(hdr() + " x", F4x2.tobytes()), "unexpected text after the header dict"),
    "header_unclosed": (npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", F4x2.tobytes(), pad=False),
                        "',' or '}' after the value of 'shape'"),
    "missing_shape": (npy_raw("{'descr': '<f4', 'fortran_order': False}", F4x2.tobytes()), "missing key 'shape'"),
    "missing_descr": (npy_raw("{'fortran_order': False, 'shape': (2,)}", F4x2.tobytes()), "missing key 'descr'"),
    "unknown_key": (npy_raw(hdr()[:-1] + "'order': 'C', }", F4x2.tobytes()), "unexpected key 'order'"),
    "duplicate_key": (npy_raw(hdr()[:-1] + "'shape': (2,), }", F4x2.tobytes()), "duplicate key 'shape'"),
    "big_endian": (npy_save(F4x2.astype(">f4")), "big-endian dtype '>f4' is not supported"),
    "int32": (npy_save(np.array([1, 2], dtype="<i4")), "unsupported dtype '<i4'"),
    "float16": (npy_save(np.array([1, 2], dtype="<f2")), "unsupported dtype '<f2'"),
    "pipe_f4": (npy_raw(hdr(descr="'|f4'"), F4x2.tobytes()), "unsupported dtype '|f4'"),
    "object": (npy_save(np.array([None, 1], dtype=object)), "unsupported dtype '|O'"),
    "structured": (npy_save(np.zeros(2, dtype=[("a", "<f4")])), "structured dtypes"),
    "fortran_order": (npy_save(np.asfortranarray(formula(6).astype("<f4").reshape(2, 3))),
                      "Fortran-order (column-major) arrays are not supported"),
    "fortran_order_not_bool": (npy_raw(hdr(fortran="0"), F4x2.tobytes()), "True or False for 'fortran_order'"),
    "shape_list": (npy_raw(hdr(shape="[2]"), F4x2.tobytes()), "a tuple such as (2, 3), (3,) or ()"),
    "shape_int_in_parens": (npy_raw(hdr(shape="(2)"), F4x2.tobytes()), "'shape' must be a tuple"),
    "shape_negative": (npy_raw(hdr(shape="(-2,)"), F4x2.tobytes()), "'shape' extent 0 is negative"),
    "shape_float": (npy_raw(hdr(shape="(2.0,)"), F4x2.tobytes()), "expected ',' or ')' in 'shape'"),
    "shape_dim_too_large": (npy_raw(hdr(shape="(9223372036854775808,)"), b""), "exceeds the int64 range"),
    "shape_overflow": (npy_raw(hdr(shape="(4294967296, 4294967296)"), b""), "element count exceeds 2^63 - 1"),
    "truncated_data": (npy_save(formula(6).astype("<f4").reshape(2, 3))[:-4],
                       "truncated data: expected 24 bytes of data for shape (2, 3) of '<f4', got 20"),
    "extra_bytes": (npy_save(formula(6).astype("<f8").reshape(3, 2)) + b"\0\0\0\0",
                    "4 extra trailing byte(s) after the data"),
}


# ----------------------------------------------------------------------------- valid files

def f16_bits(values):
    return np.array(values, dtype="<f2").view("<u2")


def bf16_bits(values):
    """bfloat16 bit patterns of float32 values that bfloat16 represents exactly."""
    bits = np.array(values, dtype="<f4").view("<u4")
    assert np.all(bits & 0xFFFF == 0) or np.any(np.isnan(np.array(values, dtype="<f4")))
    return (bits >> 16).astype("<u2")


# Special values (bit patterns, checked by exact bits in the C++ tests).
F16_SPECIAL = [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x3C00, 0xC000, 0x7BFF, 0x7C00, 0xFC00, 0x7E00, 0x7C01]
BF16_SPECIAL = [0x0000, 0x8000, 0x0001, 0x007F, 0x0080, 0x3F80, 0xC000, 0x7F7F, 0x7F80, 0xFF80, 0x7FC0, 0x7F81]


def valid_files():
    files = {}
    # F32 [2, 3] and F64 [4]
    files["f32.safetensors"] = st_bytes({"w": entry("F32", [2, 3], 0, 24)}, f32(6))
    files["f64.safetensors"] = st_bytes({"w": entry("F64", [4], 0, 32)}, formula(4).astype("<f8").tobytes())
    # F16: formula values (exact in half), then the special bit patterns
    fv = f16_bits(formula(12)).tobytes()
    fs = np.array(F16_SPECIAL, dtype="<u2").tobytes()
    files["f16.safetensors"] = st_bytes({"values": entry("F16", [3, 4], 0, 24),
                                         "special": entry("F16", [len(F16_SPECIAL)], 24, 24 + len(fs))}, fv + fs)
    bv = bf16_bits(formula(12).astype(np.float32)).tobytes()
    bs = np.array(BF16_SPECIAL, dtype="<u2").tobytes()
    files["bf16.safetensors"] = st_bytes({"values": entry("BF16", [12], 0, 24),
                                          "special": entry("BF16", [len(BF16_SPECIAL)], 24, 24 + len(bs))}, bv + bs)
    # BN buffers as torch saves them: an I64 scalar num_batches_tracked, data not in key order.
    files["i64_num_batches_tracked.safetensors"] = st_bytes({
        "bn.num_batches_tracked": entry("I64", [], 16, 24),
        "bn.running_mean": entry("F32", [4], 24, 40),
        "big": entry("I64", [2], 0, 16)},
        np.array([-(2**40), 7], dtype="<i8").tobytes() + np.array([12345], dtype="<i8").tobytes() + f32(4))
    # Zero-element tensors (two at the same offset, one at the end) and a 0-d one.
    files["empty_tensor.safetensors"] = st_bytes({
        "empty": entry("F32", [0, 3], 0, 0), "empty2": entry("F64", [2, 0], 0, 0),
        "scalar": entry("F32", [], 0, 4), "tail": entry("F16", [0], 4, 4)}, f32(1))
    files["no_tensors.safetensors"] = st_bytes({})
    files["metadata.safetensors"] = st_bytes({
        "__metadata__": {"format": "pt", "note": "caf\u00e9 \u2713"}, "w": entry("F32", [2], 0, 8)}, f32(2))
    # Unpadded header, keys with escapes, trailing whitespace padding with newlines/tabs.
    files["unpadded_header.safetensors"] = st_bytes({"a\"b\\c\u00e9": entry("F32", [2], 0, 8)}, f32(2), pad=False)
    files["whitespace_padding.safetensors"] = st_bytes(
        None, raw_header=b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}\n\t  ', data=f32(2))

    # npy written by numpy itself (formula values)
    files["f4_v1.npy"] = npy_save(formula(6).astype("<f4").reshape(2, 3))
    files["f8_v1.npy"] = npy_save(formula(24).astype("<f8").reshape(2, 3, 4))
    files["f4_v2.npy"] = npy_save(formula(5).astype("<f4"), version=(2, 0))
    files["f8_v3.npy"] = npy_save(formula(4).astype("<f8").reshape(1, 4), version=(3, 0))
    files["scalar_0d.npy"] = npy_save(np.array(2.5, dtype="<f8"))
    files["empty.npy"] = npy_save(np.zeros((0, 3), dtype="<f4"))
    # Hand-written headers numpy also accepts: keys reordered, double quotes, no trailing comma.
    files["reordered_header.npy"] = npy_raw("{\"shape\": (3, 1), 'fortran_order': False, 'descr': '<f8'}",
                                            formula(3).astype("<f8").tobytes())
    return files


# ----------------------------------------------------------------------------- main

def write_all():
    for d in (MALFORMED, VALID):
        if os.path.isdir(d):
            shutil.rmtree(d)
    os.makedirs(os.path.join(MALFORMED, "safetensors"))
    os.makedirs(os.path.join(MALFORMED, "npy"))
    os.makedirs(VALID)
    expected = {}
    total = 0
    for kind, cases in (("safetensors", SAFETENSORS_CASES), ("npy", NPY_CASES)):
        for name, (data, message) in sorted(cases.items()):
            fname = name + "." + kind
            assert fname not in expected, fname
            with open(os.path.join(MALFORMED, kind, fname), "wb") as f:
                f.write(data)
            expected[fname] = message
            total += len(data)
    with open(os.path.join(MALFORMED, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True, ensure_ascii=True)
        f.write("\n")
    for name, data in sorted(valid_files().items()):
        with open(os.path.join(VALID, name), "wb") as f:
            f.write(data)
        total += len(data)
    self_check()
    print("wrote %d malformed and %d valid files, %d bytes of data" %
          (len(expected), len(valid_files()), total))
    assert total < SIZE_BUDGET, total


def self_check():
    """The valid .npy files load in numpy; the malformed numpy-rule files are rejected or odd."""
    for name in sorted(os.listdir(VALID)):
        if name.endswith(".npy"):
            a = np.load(os.path.join(VALID, name))
            assert a.dtype in (np.float32, np.float64), name
            if name not in ("scalar_0d.npy", "empty.npy"):
                np.testing.assert_array_equal(a.ravel(), formula(a.size))
    # torch agrees with the hand-made bfloat16 and half bit patterns
    v = formula(12)
    assert np.array_equal(torch.tensor(v, dtype=torch.bfloat16).view(torch.int16).numpy().astype("<u2"),
                          bf16_bits(v.astype(np.float32)))
    assert np.array_equal(torch.tensor(v, dtype=torch.float16).view(torch.int16).numpy().astype("<u2"), f16_bits(v))


def check_npy(paths):
    """np.load each file and print it: checks that files written by sknet's write_npy load in numpy."""
    for p in paths:
        a = np.load(p)
        print("%s: dtype %s shape %s fortran %s values %s" %
              (p, a.dtype, a.shape, np.isfortran(a), np.array2string(a.ravel()[:8])))


if __name__ == "__main__":
    os.chdir(ROOT)
    if len(sys.argv) > 1 and sys.argv[1] == "--check-npy":
        check_npy(sys.argv[2:])
    else:
        write_all()
