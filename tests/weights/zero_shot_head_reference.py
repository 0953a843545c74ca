#!/usr/bin/python3
"""CLIP's zero-shot head computed in PyTorch: the check of `cftrain zeroshot-head` used by
tests/weights/test_convert_clip.py (cftrain makes heads; this is only a reference for tests).

Per class, every template filled with the class name is tokenized by the plain-Python reference
of OpenAI's tokenizer (tests/fixtures/clip_tokenizer_reference.py, the shipped vocabulary
weights/bpe_simple_vocab_16e6.txt.gz), encoded by the independent text tower
(tests/fixtures/clip_reference.py's TextTransformer) in float64, L2-normalised, averaged,
normalised again, and multiplied by exp(logit_scale), as OpenAI's prompt-engineering notebook.

As a command, it compares a head with the reference head of a converted checkpoint (OpenAI
names, text_heads recorded by weights/convert_clip.py), within 1e-4 of the head's scale:

    zero_shot_head_reference.py --weights clip.safetensors --head head.npy \\
        [--classnames FILE] [--templates FILE]   (default: weights/prompts/, the shipped lists)
"""
import argparse
import os
import re
import sys

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "weights"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
import safetensors_io  # noqa: E402
from clip_reference import TextTransformer  # noqa: E402
from clip_tokenizer_reference import SimpleTokenizer  # noqa: E402

VOCABULARY = os.path.join(ROOT, "weights", "bpe_simple_vocab_16e6.txt.gz")
_tokenizer = None


def tokenizer():
    """The reference tokenizer with the shipped vocabulary (read once: a second or so)."""
    global _tokenizer
    if _tokenizer is None:
        _tokenizer = SimpleTokenizer(VOCABULARY)
    return _tokenizer


def text_tower(state, heads):
    """The text tower of an OpenAI-named state dict (no prefix; visual.* and logit_scale are left
    out) as a float64 TextTransformer with `heads` attention heads."""
    vocab, width = state["token_embedding.weight"].shape
    layers = 1 + max(int(m.group(1)) for m in map(re.compile(r"transformer\.resblocks\.(\d+)\.").match, state) if m)
    model = TextTransformer(vocab=vocab, context=state["positional_embedding"].shape[0], width=width,
                            layers=layers, heads=heads, output_dim=state["text_projection"].shape[1])
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("visual.") and k != "logit_scale"})
    return model.double().eval()


def zero_shot_head(state, heads, classnames, templates):
    """The float64 (classes, dim) head of an OpenAI-named state dict with `heads` text heads."""
    model = text_tower(state, heads)
    context = state["positional_embedding"].shape[0]
    rows = []
    with torch.no_grad():
        for name in classnames:
            ids = torch.tensor(tokenizer().tokenize([t.replace("{}", name) for t in templates], context))
            rows.append(F.normalize(F.normalize(model(ids), dim=-1).mean(dim=0), dim=0))
    return (torch.stack(rows) * state["logit_scale"].double().exp()).numpy()


def zero_shot_head_of_file(path, classnames, templates):
    """The head of a converted checkpoint, with the text heads it records (else width / 64)."""
    state = {k: torch.as_tensor(v) for k, v in safetensors_io.load(path).items()}
    recorded = safetensors_io.metadata(path).get("text_heads")
    heads = int(recorded) if recorded else state["token_embedding.weight"].shape[1] // 64
    return zero_shot_head(state, heads, classnames, templates)


def max_error(head, reference):
    """The largest difference of two heads as a fraction of the reference's scale (its rows'
    norm, exp(logit_scale))."""
    return float(np.abs(head.astype(np.float64) - reference).max() / np.linalg.norm(reference, axis=1).max())


def lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="converted checkpoint (weights/convert_clip.py)")
    parser.add_argument("--head", required=True, help="head to check (.npy, classes x dim)")
    parser.add_argument("--classnames", default=os.path.join(ROOT, "weights", "prompts", "imagenet_classnames.txt"))
    parser.add_argument("--templates", default=os.path.join(ROOT, "weights", "prompts", "imagenet_templates.txt"))
    args = parser.parse_args()
    head = np.load(args.head)
    reference = zero_shot_head_of_file(args.weights, lines(args.classnames), lines(args.templates))
    if head.shape != reference.shape:
        sys.exit(f"error: {args.head} has shape {head.shape}, the reference head {reference.shape}")
    error = max_error(head, reference)
    print(f"max |head - reference| = {error:.2e} of the head's scale (limit 1e-4)")
    sys.exit(0 if error <= 1e-4 else 1)


if __name__ == "__main__":
    main()
