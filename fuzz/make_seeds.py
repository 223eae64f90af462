#!/usr/bin/env python3
"""Write small, valid seed inputs for the fuzz targets (standard library only).

    python3 make_seeds.py OUT_DIR

writes OUT_DIR/{weights,npy,image}/gen_* : safetensors and burnpack weight files (plain, with
a `hydra.config` metadata entry, with decoder/head tensors so that the configuration is
inferred, and a training checkpoint), `.npy` arrays of every supported dtype (C and Fortran
order, header versions 1 and 2), and PNGs of every colour type hydra reads (RGB, RGBA, grey,
grey+alpha, palette, 16-bit grey, with a tEXt chunk) and baseline JPEGs (grey, YCbCr
4:4:4, 4:2:0 with restart markers).
"""
import json
import os
import struct
import sys
import zlib


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


# ---- weights ---------------------------------------------------------------------------

def f32(values):
    return b"".join(struct.pack("<f", v) for v in values)


def i64(values):
    return b"".join(struct.pack("<q", v) for v in values)


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def tensor_f32(shape, scale=0.01):
    return ("F32", shape, f32([((i * 7) % 13 - 6) * scale for i in range(numel(shape))]))


SMALL = {
    "a.weight": tensor_f32([2, 3]),
    "a.num_batches_tracked": ("I64", [], i64([3])),
}

# Decoder and head keys (official HydraNet names), tiny channel counts, so that
# `WeightFile::config()` infers a network (classes from segm.weight, width from conv3...).
DECODER = {
    "layer1.0.weight": tensor_f32([4, 3, 3, 3]),
    "bn1.running_var": ("F32", [4], f32([1.0, 0.5, 2.0, 1.0])),
    "conv3.weight": tensor_f32([8, 4, 1, 1]),
    "crp1.0.1_outvar_dimred.weight": tensor_f32([8, 8, 1, 1]),
    "crp1.0.2_outvar_dimred.weight": tensor_f32([8, 8, 1, 1]),
    "pre_segm.weight": tensor_f32([8, 8, 1, 1]),
    "segm.weight": tensor_f32([5, 8, 3, 3]),
    "segm.bias": tensor_f32([5]),
    "pre_depth.weight": tensor_f32([8, 8, 1, 1]),
    "depth.weight": tensor_f32([1, 8, 3, 3]),
    "depth.bias": tensor_f32([1]),
}

CONFIG = json.dumps({"num_classes": 5, "tasks": ["segmentation", "depth"], "crp_stages": 2,
                     "decoder_width": 8, "seed": 0, "init": "reference"})


def safetensors(tensors, metadata=None):
    header, blobs, at = {}, [], 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for extra, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | extra]) + struct.pack(fmt, n)
    raise ValueError(n)


def cbor(v):
    if isinstance(v, bool):
        return b"\xf5" if v else b"\xf4"
    if isinstance(v, int):
        return cbor_head(0, v)
    if isinstance(v, str):
        b = v.encode()
        return cbor_head(3, len(b)) + b
    if isinstance(v, (list, tuple)):
        return cbor_head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict):
        return cbor_head(5, len(v)) + b"".join(cbor(k) + cbor(x) for k, x in v.items())
    raise TypeError(v)


def burnpack(tensors, metadata=None):
    """burnpack (Burn's format): "BURN" u32 LE, version u16, metadata length u32, CBOR
    metadata, then the data section at a 256-aligned offset, each tensor 256-aligned."""
    desc, data = {}, b""
    for name, (dtype, shape, raw) in sorted(tensors.items()):
        data += b"\0" * (-len(data) % 256)
        desc[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    meta = {"tensors": desc}
    if metadata:
        meta["metadata"] = metadata
    m = cbor(meta)
    head = struct.pack("<IHI", 0x4255524E, 1, len(m)) + m
    return head + b"\0" * (-len(head) % 256) + data


def weights(out):
    write(f"{out}/gen_small.safetensors", safetensors(SMALL, {"format": "pt"}))
    write(f"{out}/gen_config.safetensors", safetensors(SMALL, {"hydra.config": CONFIG}))
    write(f"{out}/gen_decoder.safetensors", safetensors(DECODER))
    write(f"{out}/gen_module_f16.safetensors",
          safetensors({"module.segm.weight": ("F16", [2, 2], struct.pack("<4e", 0.5, -1.0, 2.0, 0.25)),
                       "module.segm.bias": ("F64", [2], struct.pack("<2d", 0.1, -0.1))}))
    write(f"{out}/gen_small.bpk", burnpack(SMALL))
    write(f"{out}/gen_config.bpk", burnpack(SMALL, {"hydra.config": CONFIG}))
    write(f"{out}/gen_decoder.bpk", burnpack(DECODER))
    write(f"{out}/gen_checkpoint.bpk",
          burnpack({"model/" + k: v for k, v in DECODER.items()} | {"optim/step": ("I64", [], i64([7]))},
                   {"hydra.checkpoint": "1", "hydra.config": CONFIG}))


# ---- npy -------------------------------------------------------------------------------

def npy(descr, shape, raw, fortran=False, version=1):
    shape_s = f"({shape[0]},)" if len(shape) == 1 else "(" + ", ".join(str(d) for d in shape) + ")"
    h = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape_s}, }}"
    pre = 10 if version == 1 else 12
    h += " " * (-(pre + len(h) + 1) % 64) + "\n"
    lenf = struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([version, 0]) + lenf + h.encode("latin1") + raw


def npys(out):
    vals = list(range(12))
    write(f"{out}/gen_f4_2x3x2.npy", npy("<f4", [2, 3, 2], f32([v * 0.5 for v in vals])))
    write(f"{out}/gen_f4_fortran.npy", npy("<f4", [3, 4], f32([v * 0.5 for v in vals]), fortran=True))
    write(f"{out}/gen_f8.npy", npy("<f8", [4], struct.pack("<4d", 1.5, -2.0, 0.0, 1e300)))
    write(f"{out}/gen_f2_v2.npy", npy("<f2", [2, 2], struct.pack("<4e", 0.5, -1.0, 65504.0, 6e-8), version=2))
    write(f"{out}/gen_i8_scalar.npy", npy("<i8", [], i64([-5])))
    write(f"{out}/gen_i4.npy", npy("<i4", [3], struct.pack("<3i", -1, 0, 7)))
    write(f"{out}/gen_i2.npy", npy("<i2", [2], struct.pack("<2h", -300, 300)))
    write(f"{out}/gen_i1.npy", npy("|i1", [3], bytes([255, 0, 1])))
    write(f"{out}/gen_u1_cmap.npy", npy("|u1", [4, 3], bytes(range(12)), fortran=True))
    write(f"{out}/gen_u2.npy", npy("<u2", [2], struct.pack("<2H", 1, 65535)))
    write(f"{out}/gen_u4.npy", npy("<u4", [2], struct.pack("<2I", 1, 1 << 31)))
    write(f"{out}/gen_u8.npy", npy("<u8", [2], struct.pack("<2Q", 1, 1 << 63)))
    write(f"{out}/gen_b1.npy", npy("|b1", [2, 2], bytes([1, 0, 0, 1])))
    write(f"{out}/gen_empty.npy", npy("<f4", [0, 3], b""))


# ---- png -------------------------------------------------------------------------------

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def png_filter(kind, row, prev, bpp):
    """Row filtered with PNG filter `kind` (0 none, 1 sub, 2 up, 3 average, 4 Paeth)."""
    out = bytearray()
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out.append((x - pred) % 256)
    return bytes([kind]) + bytes(out)


def png(width, height, color, depth, rows, palette=None, text=None):
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0))
    if palette:
        out += chunk(b"PLTE", palette)
    for k, v in (text or {}).items():
        out += chunk(b"tEXt", k.encode("latin1") + b"\0" + v.encode("latin1"))
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    bpp = max(1, channels * depth // 8)
    prev, raw = bytes(len(rows[0])), b""
    for i, r in enumerate(rows):  # every filter type in turn
        raw += png_filter(i % 5, r, prev, bpp)
        prev = r
    return out + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def pngs(out):
    w, h = 12, 8
    write(f"{out}/gen_rgb8.png", png(w, h, 2, 8, [bytes((x * 20 + y * 3 + c * 70) % 256 for x in range(w) for c in range(3)) for y in range(h)],
                                     text={"hydra": "seed"}))
    write(f"{out}/gen_rgba8.png", png(w, h, 6, 8, [bytes((x * 9 + c * 50 + y) % 256 for x in range(w) for c in range(4)) for y in range(h)]))
    write(f"{out}/gen_gray8_label.png", png(w, h, 0, 8, [bytes((x // 3 + y // 2) % 6 for x in range(w)) for y in range(h)]))
    write(f"{out}/gen_gray_alpha.png", png(w, h, 4, 8, [bytes((x * 20) % 256 if c == 0 else 255 for x in range(w) for c in range(2)) for y in range(h)]))
    write(f"{out}/gen_indexed_label.png", png(w, h, 3, 8, [bytes((x + y) % 4 for x in range(w)) for y in range(h)],
                                              palette=bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])))
    write(f"{out}/gen_gray16_depth.png", png(w, h, 0, 16, [b"".join(struct.pack(">H", 1000 + 37 * x + 500 * y) for x in range(w)) for y in range(h)],
                                             text={"depth_min_m": "0.5", "depth_max_m": "10"}))
    write(f"{out}/gen_gray1.png", png(16, 2, 0, 1, [b"\xaa\x55", b"\x0f\xf0"]))


# ---- jpeg ------------------------------------------------------------------------------
# A small baseline (SOF0) encoder: level shift, 8x8 DCT, quantisation, zig-zag, run lengths,
# and its own canonical Huffman tables (every DC category a 4-bit code, every AC symbol an
# 8-bit code), so that no standard table has to be copied. Grey or YCbCr, 4:4:4 or 4:2:0,
# optionally with restart markers.

import math

ZIGZAG = sorted(range(64), key=lambda i: (i // 8 + i % 8, (i % 8) if (i // 8 + i % 8) % 2 == 0 else (i // 8)))
QUANT = [1 + 2 * (i // 8 + i % 8) for i in range(64)]  # natural order
AC_SYMBOLS = [0x00, 0xF0] + [(r << 4) | s for r in range(16) for s in range(1, 11)]
COS = [[math.cos((2 * x + 1) * u * math.pi / 16) for x in range(8)] for u in range(8)]


class Bits:
    def __init__(self):
        self.out, self.acc, self.n = bytearray(), 0, 0

    def put(self, value, length):
        for k in range(length - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> k) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)
                self.acc, self.n = 0, 0

    def flush(self):
        while self.n:
            self.put(1, 1)


def dct(block):
    out = [0.0] * 64
    for v in range(8):
        for u in range(8):
            s = sum(block[y * 8 + x] * COS[u][x] * COS[v][y] for y in range(8) for x in range(8))
            cu, cv = (1 / math.sqrt(2) if u == 0 else 1), (1 / math.sqrt(2) if v == 0 else 1)
            out[v * 8 + u] = 0.25 * cu * cv * s
    return [int(round(out[i] / QUANT[i])) for i in range(64)]


def category(v):
    return abs(v).bit_length()


def amplitude(v, c):
    return v if v >= 0 else v + (1 << c) - 1


def encode_block(bits, coef, prev_dc):
    diff = coef[0] - prev_dc
    c = category(diff)
    bits.put(c, 4)
    bits.put(amplitude(diff, c), c)
    zz = [coef[i] for i in ZIGZAG]
    last = max([k for k in range(1, 64) if zz[k] != 0], default=0)
    run = 0
    for k in range(1, last + 1):
        if zz[k] == 0:
            run += 1
            continue
        while run > 15:
            bits.put(AC_SYMBOLS.index(0xF0), 8)
            run -= 16
        s = category(zz[k])
        bits.put(AC_SYMBOLS.index((run << 4) | s), 8)
        bits.put(amplitude(zz[k], s), s)
        run = 0
    if last < 63:
        bits.put(AC_SYMBOLS.index(0x00), 8)
    return coef[0]


def segment(marker, payload):
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg(width, height, rgb, gray=False, subsample=False, restart=0):
    """`rgb(x, y)` -> (r, g, b) in 0..=255."""
    def plane(f):
        return [[f(*rgb(min(x, width - 1), min(y, height - 1))) for x in range(width + 16)] for y in range(height + 16)]
    comps = [plane(lambda r, g, b: 0.299 * r + 0.587 * g + 0.114 * b)]
    if not gray:
        comps.append(plane(lambda r, g, b: 128 - 0.168736 * r - 0.331264 * g + 0.5 * b))
        comps.append(plane(lambda r, g, b: 128 + 0.5 * r - 0.418688 * g - 0.081312 * b))
    hs = 2 if subsample and not gray else 1
    out = b"\xff\xd8" + segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0")
    out += segment(0xDB, b"\x00" + bytes(QUANT[i] for i in ZIGZAG))
    if not gray:
        out += segment(0xDB, b"\x01" + bytes(QUANT[i] for i in ZIGZAG))
    sof = struct.pack(">BHHB", 8, height, width, len(comps))
    for k in range(len(comps)):
        sof += bytes([k + 1, (hs << 4 | hs) if k == 0 else 0x11, 0 if k == 0 else 1])
    out += segment(0xC0, sof)
    dc = bytes([0, 0, 0, 12] + [0] * 12) + bytes(range(12))
    ac = bytes([0] * 7 + [len(AC_SYMBOLS)] + [0] * 8) + bytes(AC_SYMBOLS)
    out += segment(0xC4, b"\x00" + dc + b"\x10" + ac)
    if restart:
        out += segment(0xDD, struct.pack(">H", restart))
    out += segment(0xDA, bytes([len(comps)]) + b"".join(bytes([k + 1, 0x00]) for k in range(len(comps))) + b"\x00\x3f\x00")
    bits, prev = Bits(), [0] * len(comps)
    mcu_px = 8 * hs
    mcus = [(mx, my) for my in range(0, height, mcu_px) for mx in range(0, width, mcu_px)]
    for n, (mx, my) in enumerate(mcus):
        if restart and n and n % restart == 0:
            bits.flush()
            bits.out += bytes([0xFF, 0xD0 + (n // restart - 1) % 8])
            prev = [0] * len(comps)
        for k, p in enumerate(comps):
            if k == 0:
                for by in range(hs):
                    for bx in range(hs):
                        blk = [p[my + by * 8 + y][mx + bx * 8 + x] - 128 for y in range(8) for x in range(8)]
                        prev[k] = encode_block(bits, dct(blk), prev[k])
            else:
                blk = [sum(p[my + (y * hs) + j][mx + (x * hs) + i] for j in range(hs) for i in range(hs)) / (hs * hs) - 128
                       for y in range(8) for x in range(8)]
                prev[k] = encode_block(bits, dct(blk), prev[k])
    bits.flush()
    return out + bytes(bits.out) + b"\xff\xd9"


def jpegs(out):
    def rgb(x, y):
        return ((x * 11) % 256, (y * 17) % 256, ((x + y) * 5) % 256)
    write(f"{out}/gen_rgb444.jpg", jpeg(12, 8, rgb))
    write(f"{out}/gen_rgb420_restart.jpg", jpeg(33, 17, rgb, subsample=True, restart=2))
    write(f"{out}/gen_gray.jpg", jpeg(12, 8, rgb, gray=True))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "corpus"
    weights(f"{out}/weights")
    npys(f"{out}/npy")
    pngs(f"{out}/image")
    jpegs(f"{out}/image")


if __name__ == "__main__":
    main()
