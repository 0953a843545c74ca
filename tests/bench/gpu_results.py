#!/usr/bin/env python3
"""Writes the GPU check's results file (tests/bench/results/h200-<date>.json) from the outputs of
tests/bench/gpu_check.sh: env.log (nvidia-smi and nvcc lines), ours_<precision>.json (cftrain
bench --json), torch.log (bench_steps_pytorch.py, every precision) and tests.json (the test counts).
Shape: {"device", "driver", "cuda", "date", "tests": {"passed", "failed", "skipped"},
"bench": [{"mode", "precision", "batch", "ours_img_s", "pytorch_img_s", "ratio",
"ours_peak_mib", "pytorch_peak_mib"}, ...]}, one bench row per mode and precision; a value that
was not measured is null. Exit 1 when a row or the test counts are missing.

    python3 tests/bench/gpu_results.py --tests T/tests.json --bench B --out tests/bench/results/h200-DATE.json
"""
import argparse
import datetime
import json
import math
import os
import re
import sys

PRECISIONS = ("fp32", "tf32", "bf16")
MODES = ("infer", "ft", "ftfd", "cam", "full")


def number(value):
    return None if value is None or math.isnan(value) else round(value, 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench", required=True, help="folder of the bench stage's outputs")
    parser.add_argument("--tests", help="tests.json of the tests stage")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    env = open(os.path.join(args.bench, "env.log")).read() if os.path.exists(
        os.path.join(args.bench, "env.log")) else ""
    gpu = re.search(r"^([^,\n]+), ([\d.]+), \d+ MiB", env, re.M)
    cuda = re.search(r"release [\d.]+, V([\d.]+)", env)
    complete = True
    rows = []
    for precision in PRECISIONS:
        ours = {}
        try:
            for row in json.load(open(os.path.join(args.bench, f"ours_{precision}.json"))):
                ours[row["mode"]] = (row["images_per_second"], row["peak_bytes"] / 2**20)
        except (OSError, ValueError, KeyError):
            pass
        torch = {}
        try:
            for line in open(os.path.join(args.bench, "torch.log")):
                m = re.match(r"vit-b16\s+(\w+)\s+(\w+)\s+cuda\s+(\d+)\s+[\d.]+\s+([\d.]+)\s+([\d.]+|nan)",
                             line)
                if m and m[2] == precision:
                    torch[m[1]] = (float(m[4]), float(m[5]))
        except OSError:
            pass
        for mode in MODES:
            o, t = ours.get(mode, (None, None)), torch.get(mode, (None, None))
            complete &= o[0] is not None and t[0] is not None
            rows.append({"mode": mode, "precision": precision, "batch": 128,
                         "ours_img_s": number(o[0]), "pytorch_img_s": number(t[0]),
                         "ratio": round(o[0] / t[0], 3) if o[0] and t[0] else None,
                         "ours_peak_mib": number(o[1]), "pytorch_peak_mib": number(t[1])})
    tests = None
    if args.tests:
        counts = json.load(open(args.tests))
        tests = {k: counts[k] for k in ("passed", "failed", "skipped")}
    result = {"device": gpu[1] if gpu else None, "driver": gpu[2] if gpu else None,
              "cuda": cuda[1] if cuda else None, "date": datetime.date.today().isoformat(),
              "tests": tests, "bench": rows}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"{'mode':7}{'prec':6}{'ours img/s':>12}{'torch img/s':>13}{'ratio':>8}{'ours MiB':>10}{'torch MiB':>11}")
    for r in rows:
        cells = [r["ours_img_s"], r["pytorch_img_s"], r["ratio"], r["ours_peak_mib"], r["pytorch_peak_mib"]]
        print(f"{r['mode']:7}{r['precision']:6}" + "".join(
            f"{'-' if c is None else c:>{w}}" for c, w in zip(cells, (12, 13, 8, 10, 11))))
    if not complete or tests is None:
        print("gpu_results: a bench row or the test counts are missing", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
