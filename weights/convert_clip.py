#!/usr/bin/env python3
"""Converts a CLIP checkpoint into one safetensors file with OpenAI parameter names, and can
write the zero-shot classification head for a list of class names and prompt templates.

Sources:
  - an OpenAI CLIP .pt (TorchScript archive as released, or a plain state dict),
  - an open_clip checkpoint (state dict, optionally under "state_dict", "module." prefixes),
  - a HuggingFace transformers CLIPModel directory (config.json with model.safetensors or
    pytorch_model.bin; its vocab.json / merges.txt serve as the tokenizer).

Examples:
  convert_clip.py ViT-B-16.pt --out clip_vit_b16.safetensors
  convert_clip.py ViT-B-16.pt --out clip.safetensors --dtype f16
  convert_clip.py clip-vit-base-patch16/ --out clip.safetensors \\
      --classnames imagenet_classes.txt --templates imagenet_templates.txt --head-out head.npy
  (OpenAI checkpoints need the tokenizer vocabulary: --bpe bpe_simple_vocab_16e6.txt.gz)

The head is computed with the checkpoint's own text tower in PyTorch: for every class, each
template filled with the class name is encoded, L2-normalised, averaged over templates,
normalised again and multiplied by exp(logit_scale); the result is a float32 (classes, dim)
.npy for `cftrain embed --head` and training. Needs PyTorch and NumPy (Debian: python3-torch).
"""
import argparse
import gzip
import html
import json
import os
import re
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


def fail(message):
    sys.exit(f"error: {message}")


# --- reading sources ------------------------------------------------------------------------

def read_source(path):
    """Returns (state dict in OpenAI names, BPE merges file or None, the visual tower's attention
    heads when the source says (HuggingFace configs) or None)."""
    if os.path.isdir(path):
        return read_huggingface(path)
    if not os.path.isfile(path):
        fail(f"{path}: no such file or directory")
    try:
        state = torch.jit.load(path, map_location="cpu").state_dict()
    except Exception:  # not TorchScript: a pickled state dict
        try:
            state = torch.load(path, map_location="cpu")
        except Exception as e:
            fail(f"{path}: not a TorchScript archive or PyTorch checkpoint ({e})")
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        fail(f"{path}: does not hold a state dict of tensors")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    if not any(k.startswith("visual.") for k in state):
        fail(f"{path}: no 'visual.' parameters: not a CLIP checkpoint in OpenAI/open_clip layout")
    if "visual.conv1.weight" not in state:
        fail(f"{path}: the visual tower is not a Vision Transformer (no visual.conv1.weight)")
    return {k: v for k, v in state.items() if k not in ("input_resolution", "context_length", "vocab_size")}, None, None


HF_LAYER = {"self_attn.out_proj": "attn.out_proj", "layer_norm1": "ln_1", "layer_norm2": "ln_2",
            "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}


def hf_tower(hf, source, target):
    """Maps one HF encoder (vision_model.encoder / text_model.encoder) onto OpenAI resblocks."""
    out = {}
    layer = re.compile(re.escape(source) + r"\.layers\.(\d+)\.(.+)\.(weight|bias)$")
    qkv = {}
    for name, t in hf.items():
        m = layer.match(name)
        if not m:
            continue
        index, part, kind = m.groups()
        prefix = f"{target}.resblocks.{index}."
        if part in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
            qkv.setdefault((prefix, kind), {})[part[10]] = t
        elif part in HF_LAYER:
            out[prefix + HF_LAYER[part] + "." + kind] = t
        else:
            fail(f"unexpected HuggingFace key {name}")
    for (prefix, kind), parts in qkv.items():
        out[prefix + "attn.in_proj_" + kind] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def read_huggingface(directory):
    config_path = os.path.join(directory, "config.json")
    if not os.path.isfile(config_path):
        fail(f"{directory}: no config.json: not a HuggingFace model directory")
    with open(config_path) as f:
        config = json.load(f)
    act = config.get("vision_config", {}).get("hidden_act", "quick_gelu")
    if act != "quick_gelu":
        fail(f"{directory}: hidden_act {act}; only CLIP's quick_gelu is supported")
    weights = os.path.join(directory, "model.safetensors")
    if os.path.isfile(weights):
        hf = safetensors_io.load(weights)
    elif os.path.isfile(os.path.join(directory, "pytorch_model.bin")):
        hf = torch.load(os.path.join(directory, "pytorch_model.bin"), map_location="cpu")
    else:
        fail(f"{directory}: neither model.safetensors nor pytorch_model.bin")
    v, t = "vision_model.", "text_model."
    state = {
        "visual.class_embedding": hf[v + "embeddings.class_embedding"],
        "visual.conv1.weight": hf[v + "embeddings.patch_embedding.weight"],
        "visual.positional_embedding": hf[v + "embeddings.position_embedding.weight"],
        "visual.ln_pre.weight": hf[v + "pre_layrnorm.weight"], "visual.ln_pre.bias": hf[v + "pre_layrnorm.bias"],
        "visual.ln_post.weight": hf[v + "post_layernorm.weight"], "visual.ln_post.bias": hf[v + "post_layernorm.bias"],
        "visual.proj": hf["visual_projection.weight"].t().contiguous(),
        "token_embedding.weight": hf[t + "embeddings.token_embedding.weight"],
        "positional_embedding": hf[t + "embeddings.position_embedding.weight"],
        "ln_final.weight": hf[t + "final_layer_norm.weight"], "ln_final.bias": hf[t + "final_layer_norm.bias"],
        "text_projection": hf["text_projection.weight"].t().contiguous(),
        "logit_scale": hf["logit_scale"],
    }
    state.update(hf_tower(hf, v + "encoder", "visual.transformer"))
    state.update(hf_tower(hf, t + "encoder", "transformer"))
    merges = os.path.join(directory, "merges.txt")
    heads = config.get("vision_config", {}).get("num_attention_heads", 12)  # transformers' default
    return state, merges if os.path.isfile(merges) else None, heads


# --- the CLIP tokenizer (byte-level BPE, as OpenAI's simple_tokenizer) ------------------------

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


try:
    import regex
    TOKEN_PATTERN = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE)
except ImportError:  # the standard library's classes: letters, digits, and the rest
    TOKEN_PATTERN = re.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+""", re.IGNORECASE)


class Tokenizer:
    def __init__(self, merges_path):
        opener = gzip.open if merges_path.endswith(".gz") else open
        with opener(merges_path, "rt", encoding="utf-8") as f:
            lines = f.read().split("\n")
        merges = [tuple(line.split()) for line in lines[1:] if line.strip()][: 49152 - 256 - 2]
        self.byte_encoder = bytes_to_unicode()
        vocab = list(self.byte_encoder.values())
        vocab += [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = {v: i for i, v in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.sot, self.eot = self.encoder["<|startoftext|>"], self.encoder["<|endoftext|>"]

    def bpe(self, token):
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        return word

    def encode(self, text):
        text = " ".join(html.unescape(html.unescape(text)).split()).strip().lower()
        ids = []
        for token in TOKEN_PATTERN.findall(text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[piece] for piece in self.bpe(token))
        return ids

    def tokenize(self, texts, context_length):
        result = torch.zeros(len(texts), context_length, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = [self.sot] + self.encode(text) + [self.eot]
            if len(ids) > context_length:
                fail(f"prompt too long for the context of {context_length} tokens: {text!r}")
            result[i, : len(ids)] = torch.tensor(ids)
        return result


# --- the text tower (OpenAI CLIP's encode_text) -----------------------------------------------

def encode_text(state, tokens):
    width = state["token_embedding.weight"].shape[1]
    heads = width // 64
    context = state["positional_embedding"].shape[0]
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("transformer.resblocks."))
    x = state["token_embedding.weight"][tokens] + state["positional_embedding"]
    mask = torch.full((context, context), float("-inf")).triu(1)
    for i in range(layers):
        p = lambda name: state[f"transformer.resblocks.{i}.{name}"]  # noqa: E731
        h = F.layer_norm(x, (width,), p("ln_1.weight"), p("ln_1.bias"), 1e-5)
        q, k, v = F.linear(h, p("attn.in_proj_weight"), p("attn.in_proj_bias")).chunk(3, dim=-1)
        split = lambda t: t.reshape(t.shape[0], context, heads, width // heads).transpose(1, 2)  # noqa: E731
        scores = split(q) @ split(k).transpose(-1, -2) / (width // heads) ** 0.5 + mask
        attended = (scores.softmax(-1) @ split(v)).transpose(1, 2).reshape(x.shape)
        x = x + F.linear(attended, p("attn.out_proj.weight"), p("attn.out_proj.bias"))
        h = F.layer_norm(x, (width,), p("ln_2.weight"), p("ln_2.bias"), 1e-5)
        h = F.linear(h, p("mlp.c_fc.weight"), p("mlp.c_fc.bias"))
        x = x + F.linear(h * torch.sigmoid(1.702 * h), p("mlp.c_proj.weight"), p("mlp.c_proj.bias"))
    x = F.layer_norm(x, (width,), state["ln_final.weight"], state["ln_final.bias"], 1e-5)
    return x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ state["text_projection"]


def zero_shot_head(state, tokenizer, classnames, templates):
    state = {k: v.float() for k, v in state.items()}
    context = state["positional_embedding"].shape[0]
    rows = []
    with torch.no_grad():
        for name in classnames:
            prompts = [template.replace("{}", name) for template in templates]
            embeddings = F.normalize(encode_text(state, tokenizer.tokenize(prompts, context)), dim=-1)
            rows.append(F.normalize(embeddings.mean(dim=0), dim=0))
    return torch.stack(rows) * state["logit_scale"].exp()


def read_lines(path, what):
    if not os.path.isfile(path):
        fail(f"{path}: no such {what} file")
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    if not lines:
        fail(f"{path}: the {what} file is empty")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="OpenAI .pt, open_clip checkpoint, or HuggingFace CLIPModel directory")
    parser.add_argument("--out", required=True, help="output .safetensors (OpenAI names)")
    parser.add_argument("--dtype", choices=("f32", "f16"), default="f32", help="stored precision (default f32)")
    parser.add_argument("--classnames", help="text file, one class name per line")
    parser.add_argument("--templates", help="text file, one prompt template per line, '{}' marks the class name")
    parser.add_argument("--head-out", help="output float32 (classes, dim) .npy zero-shot head")
    parser.add_argument("--bpe", help="tokenizer merges (bpe_simple_vocab_16e6.txt.gz, or merges.txt)")
    parser.add_argument("--heads", type=int, help="attention heads of the visual tower (default: a HuggingFace "
                        "config's, else width / 64 as in OpenAI CLIP; open_clip's ViT-H/14 and ViT-g/14 need it)")
    args = parser.parse_args()
    head_args = (args.classnames, args.templates, args.head_out)
    if any(head_args) and not all(head_args):
        fail("--classnames, --templates and --head-out go together")

    state, merges, source_heads = read_source(args.source)
    width = state["visual.conv1.weight"].shape[0]
    heads = args.heads or source_heads or width // 64
    if heads <= 0 or width % heads:
        fail(f"{args.source}: {heads} attention heads do not divide the visual width {width}")
    if args.head_out:  # every input checked before anything is written
        if "token_embedding.weight" not in state:
            fail(f"{args.source}: has no text tower, so no zero-shot head can be computed")
        merges = args.bpe or merges
        if not merges:
            fail("the tokenizer vocabulary is needed: pass --bpe bpe_simple_vocab_16e6.txt.gz")
        classnames = read_lines(args.classnames, "class-name")
        templates = read_lines(args.templates, "template")
        if not all("{}" in t for t in templates):
            fail(f"{args.templates}: every template needs a '{{}}' for the class name")
    dtype = torch.float16 if args.dtype == "f16" else torch.float32
    converted = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}
    # Shapes do not tell the number of heads: the file records it for the C++ loader.
    safetensors_io.save(args.out, converted, {"source": os.path.basename(os.path.normpath(args.source)),
                                              "converter": "weights/convert_clip.py", "heads": heads}, quiet=True)
    print(f"wrote {args.out}: {len(converted)} tensors ({args.dtype}, {heads} visual attention heads)")
    if args.head_out:
        head = zero_shot_head(state, Tokenizer(merges), classnames, templates)
        temporary = args.head_out + ".tmp"
        with open(temporary, "wb") as f:  # written whole, then renamed: never half a head
            np.save(f, head.numpy().astype(np.float32))
        os.replace(temporary, args.head_out)
        print(f"wrote {args.head_out}: head of {head.shape[0]} classes x {head.shape[1]} dims")

if __name__ == "__main__":
    main()
