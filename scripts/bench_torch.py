"""PyTorch eager and ONNX Runtime timings of HydraNet, the references of `hydra bench`.

usage: python scripts/bench_torch.py infer|ort|train [--threads N] [--repeats N] [--batch B] [--size H W]
                                    [--compile] [--bf16]
`--compile`: torch.compile (inductor) instead of eager, compiled during the warm-up runs;
`--bf16` (infer): under torch.autocast("cpu", dtype=torch.bfloat16).
Measures exactly what `hydra bench` measures (random weights and input; train = forward,
CE + L1 on outputs upsampled to the input size, backward, SGD momentum 0.9), with warm-up,
and prints the median seconds, images/s and the process's peak RSS. One measurement per
process, so that the peak memory is that of the measurement.
Needs: torch (and onnx + onnxruntime for `ort`).
"""
import argparse, os, resource, statistics, sys, tempfile, time
import torch
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hydranet_torch import HydraNet


def timeit(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples), min(samples), max(samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["infer", "ort", "train"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--size", type=int, nargs=2, default=None)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--bf16", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = HydraNet(40)
    run = torch.compile(m) if a.compile else m
    if a.bf16 and a.what != "infer":
        sys.exit("--bf16 is for infer")
    if a.what in ("infer", "ort"):
        h, w = a.size or (480, 640)
        b = a.batch or 1
        m.eval()
        x = torch.randn(b, 3, h, w)
        if a.what == "infer":
            def infer():
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                    return run(x)
            med, lo, hi = timeit(infer, a.warmup, a.repeats)
        else:
            import onnxruntime as ort
            path = os.path.join(tempfile.mkdtemp(), "hydranet.onnx")
            torch.onnx.export(m, x, path, input_names=["image"], output_names=["segm", "depth"], dynamo=False)
            so = ort.SessionOptions()
            so.intra_op_num_threads = a.threads
            so.inter_op_num_threads = 1
            s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            xn = x.numpy()
            med, lo, hi = timeit(lambda: s.run(None, {"image": xn}), a.warmup, a.repeats)
    else:
        h, w = a.size or (256, 256)
        b = a.batch or 4
        m.train()
        opt = torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-5)
        x = torch.randn(b, 3, h, w)
        seg = torch.randint(0, 40, (b, h, w))
        dep = torch.rand(b, h, w) * 7.5 + 0.5

        def step():
            s, d = run(x)
            s = F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False)
            d = F.interpolate(d, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
            loss = 0.5 * F.cross_entropy(s, seg, ignore_index=255) + 0.5 * (d - dep).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        med, lo, hi = timeit(step, a.warmup, a.repeats)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    name = {"infer": "torch_infer", "ort": "ort_infer", "train": "torch_train_step"}[a.what]
    name += "_compile" if a.compile else ""
    name += "_bf16" if a.bf16 else ""
    print(f"{name}_{h}x{w}_b{b}: median {med:.4f} s (min {lo:.4f}, max {hi:.4f}) = {b / med:.2f} images/s; peak RSS {peak / 1e6:.0f} MB; threads {a.threads}")


if __name__ == "__main__":
    main()
