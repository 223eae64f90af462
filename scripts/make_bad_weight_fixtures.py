"""Make fixtures/pytorch/{tiny_*,evil_*}: small PyTorch files for the weight-reader tests.

usage: python scripts/make_bad_weight_fixtures.py
  tiny_zip.pth, tiny_legacy.ckpt   three small tensors (float32, float16, int64) in each
                                    serialization, the seeds of the fuzz tests
  evil_reduce_zip.pth              a checkpoint whose pickle calls os.system when unpickled by
  evil_reduce_legacy.ckpt          Python (it would `touch /tmp/hydra_pwned`); hydra must refuse it
                                    without running anything
  object_in_checkpoint.pth         tensors plus an argparse.Namespace (a non-tensor object)
"""
import argparse, collections, os
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "pytorch")


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/hydra_pwned",))


def main():
    g = torch.Generator().manual_seed(0)
    tiny = collections.OrderedDict([
        ("conv.weight", torch.randn(4, 3, 3, 3, generator=g)),
        ("half.weight", torch.randn(5, generator=g).half()),
        ("bn.num_batches_tracked", torch.tensor(7)),
    ])
    torch.save({"state_dict": tiny}, os.path.join(OUT, "tiny_zip.pth"))
    torch.save({"state_dict": tiny}, os.path.join(OUT, "tiny_legacy.ckpt"), _use_new_zipfile_serialization=False)
    torch.save({"state_dict": tiny, "evil": Evil()}, os.path.join(OUT, "evil_reduce_zip.pth"))
    torch.save({"state_dict": tiny, "evil": Evil()}, os.path.join(OUT, "evil_reduce_legacy.ckpt"), _use_new_zipfile_serialization=False)
    torch.save({"state_dict": tiny, "args": argparse.Namespace(lr=0.1)}, os.path.join(OUT, "object_in_checkpoint.pth"))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
