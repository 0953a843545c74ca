#!/usr/bin/python3
"""The PyTorch yardstick for bench_text_tower: the ViT-B/16 text tower (vocab 49408, context 77,
width 512, 12 layers, 8 heads, out 512; random weights) encoding the prompts of CLIP's zero-shot
ImageNet head, as OpenAI's encode_text computes them (clip_reference.TextTransformer's
forward_native: torch.nn.MultiheadAttention with the causal attn_mask, float32, no_grad), over
the full context of 77 tokens and truncated to each batch's longest sequence.

The prompts: the 80 templates of weights/prompts/imagenet_templates.txt filled with CLASSES class
names spread over weights/prompts/imagenet_classnames.txt (every 1000 / CLASSES-th, from the
first; over all 1000 classes the prompts average 9.6 tokens and a class's batch 13.2 at the
longest, these batches alike), tokenized by
tests/fixtures/clip_tokenizer_reference.py (the shipped BPE vocabulary); one batch per class (80
prompts), as the zero-shot head is built. After one warm-up pass, REPEATS timed passes over all
batches; prints the median prompts per second of each way as one JSON line.

    /usr/bin/python3 tests/bench/bench_text_tower_pytorch.py [--classes 2] [--repeats 3] [--threads 2]
    /usr/bin/python3 tests/bench/bench_text_tower_pytorch.py --ids-out ids.npy   # the prompts' ids only

Exits with status 77 when PyTorch or NumPy is missing.
"""
import argparse
import json
import os
import statistics
import sys
import time


def best_openblas_core():
    """Debian's OpenBLAS 0.3.21 does not recognise recent Xeons and falls back to its SSE3
    "Prescott" kernels (about 65 instead of 97 GFLOP/s at 1024^3 through PyTorch on the 2-core
    VM): as bench_gemm does, name the newest core this CPU can run, before the library loads."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return None
    return "SkylakeX" if " avx512f" in flags else "Haswell" if " avx2" in flags else None


if "OPENBLAS_CORETYPE" not in os.environ and best_openblas_core():
    os.environ["OPENBLAS_CORETYPE"] = best_openblas_core()

try:
    import numpy as np
    import torch
except ImportError as e:
    print(f"PyTorch / NumPy unavailable: {e}", file=sys.stderr)
    sys.exit(77)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "weights"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
from clip_tokenizer_reference import SimpleTokenizer  # noqa: E402
from clip_reference import TextTransformer  # noqa: E402


def prompt_ids(classes):
    """(classes * 80, 77) int64: one row per template and class, grouped by class."""
    def lines(name):
        with open(os.path.join(ROOT, "weights", "prompts", name), encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    templates, names = lines("imagenet_templates.txt"), lines("imagenet_classnames.txt")
    names = [names[i * len(names) // classes] for i in range(classes)]
    tokenizer = SimpleTokenizer(os.path.join(ROOT, "weights", "bpe_simple_vocab_16e6.txt.gz"))
    prompts = [t.replace("{}", name) for name in names for t in templates]
    return torch.tensor(tokenizer.tokenize(prompts, 77)), len(templates)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--ids-out", help="write the prompts' ids (.npy, int64) and exit")
    args = parser.parse_args()
    ids, per_batch = prompt_ids(args.classes)
    if args.ids_out:
        np.save(args.ids_out, ids.numpy())
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = TextTransformer(vocab=49408, context=77, width=512, layers=12, heads=8, output_dim=512).float().eval()
    batches = ids.split(per_batch)

    def rate(truncate):
        with torch.no_grad():
            for batch in batches:  # warm-up
                model.forward_native(batch, truncate=truncate)
            rates = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                for batch in batches:
                    model.forward_native(batch, truncate=truncate)
                rates.append(len(ids) / (time.perf_counter() - start))
        return statistics.median(rates)

    longest = [int((batch != 0).any(dim=0).nonzero().max()) + 1 for batch in batches]
    print(json.dumps({"prompts": len(ids), "batch": per_batch, "mean_tokens": float((ids != 0).sum(1).double().mean()),
                      "mean_longest": sum(longest) / len(longest), "torch": torch.__version__, "threads": args.threads,
                      "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
                      "full": rate(False), "truncated": rate(True)}))


if __name__ == "__main__":
    main()
