#!/usr/bin/env python3
"""Converts a CLIP checkpoint into one safetensors file for cftrain: OpenAI parameter names, the
visual tower and (where the checkpoint has one) the text tower with logit_scale.

Sources:
  - an OpenAI CLIP .pt (TorchScript archive as released, or a plain state dict),
  - an open_clip checkpoint (state dict, optionally under "state_dict", "module." prefixes),
  - a HuggingFace transformers CLIPModel directory (config.json with model.safetensors or
    pytorch_model.bin), or a vision-only one (CLIPVisionModelWithProjection: the visual tower
    alone).

The output records the attention heads of both towers (metadata "heads" and "text_heads"), which
the tensors' shapes do not tell. Every error in the input is one line `error: ...` and exit
status 1, before anything is written. Needs PyTorch (Debian: python3-torch).

Examples:
  convert_clip.py ViT-B-16.pt --out clip_vit_b16.safetensors
  convert_clip.py ViT-B-16.pt --out clip.safetensors --dtype f16
  convert_clip.py clip-vit-base-patch16/ --out clip.safetensors

The zero-shot classification head is made by cftrain from the converted file (CLIP's 1000
ImageNet class names and 80 templates unless given):
  cftrain zeroshot-head --weights clip.safetensors [--classnames FILE] [--templates FILE] --out head.npy
"""
import argparse
import json
import os
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


def fail(message):
    """The converter's only way out on bad input: one line `error: ...`, exit status 1."""
    sys.exit("error: " + " ".join(str(message).split()))


# --- reading sources ------------------------------------------------------------------------

class Source:
    """A checkpoint read and renamed: the state dict in OpenAI names, and the visual and text
    towers' attention heads when the source states them (a HuggingFace config) or None."""

    def __init__(self, state, heads=None, text_heads=None):
        self.state, self.heads, self.text_heads = state, heads, text_heads


def state_dict_of(value, path):
    """A {str: tensor} dict, or a one-line error naming the file."""
    if not isinstance(value, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in value.items()):
        fail(f"{path}: does not hold a state dict of tensors")
    return value


def read_source(path):
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
            fail(f"{path}: not a TorchScript archive or PyTorch checkpoint ({type(e).__name__}: {e})")
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = state_dict_of(state, path)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    if not any(k.startswith("visual.") for k in state):
        fail(f"{path}: no 'visual.' parameters: not a CLIP checkpoint in OpenAI/open_clip layout")
    if "visual.conv1.weight" not in state:
        fail(f"{path}: the visual tower is not a Vision Transformer (no visual.conv1.weight)")
    state = {k: v for k, v in state.items() if k not in ("input_resolution", "context_length", "vocab_size")}
    visual_sizes(state, path)
    return Source(state)


def visual_sizes(state, source, names=None):
    """The visual tower's sizes read off its shapes, as infer_vision_config in models/clip_vit.cpp
    reads them: {width, patch, image_size, output_dim, layers, mlp}. A shape that does not fit is
    an error naming the tensor (`names` maps OpenAI names to the source's own)."""
    name = lambda n: (names or {}).get(n, n)  # noqa: E731
    for key in ("visual.conv1.weight", "visual.positional_embedding", "visual.proj"):
        if key not in state:
            fail(f"{source}: no {name(key)}")
    conv, pos, proj = state["visual.conv1.weight"], state["visual.positional_embedding"], state["visual.proj"]
    if conv.dim() != 4 or conv.shape[1] != 3 or conv.shape[2] != conv.shape[3]:
        fail(f"{source}: {name('visual.conv1.weight')} has shape {list(conv.shape)}, expected (width, 3, patch, patch)")
    width, patch = conv.shape[0], conv.shape[2]
    grid = int(round(max(pos.shape[0] - 1, 0) ** 0.5)) if pos.dim() == 2 else 0
    if pos.dim() != 2 or pos.shape[1] != width or grid * grid + 1 != pos.shape[0]:
        fail(f"{source}: {name('visual.positional_embedding')} has shape {list(pos.shape)}, expected "
             f"(grid * grid + 1, {width})")
    if proj.dim() != 2 or proj.shape[0] != width:
        fail(f"{source}: {name('visual.proj')} has shape {list(proj.shape)}, expected ({width}, output dim)")
    block = re.compile(r"visual\.transformer\.resblocks\.(\d+)\.")
    indices = [int(m.group(1)) for m in map(block.match, state) if m]
    if not indices:
        fail(f"{source}: the visual tower has no transformer blocks")
    fc = state.get("visual.transformer.resblocks.0.mlp.c_fc.weight")
    return {"width": width, "patch": patch, "image_size": patch * grid, "output_dim": proj.shape[1],
            "layers": 1 + max(indices), "mlp": fc.shape[0] if fc is not None and fc.dim() == 2 else None}


def read_json(path):
    """A JSON object from a file; one that cannot be read or is not a JSON object is an error."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except OSError as e:
        fail(f"{path}: cannot be read ({e.strerror or e})")
    except ValueError as e:  # json.JSONDecodeError, UnicodeDecodeError
        fail(f"{path}: not valid JSON ({e})")
    if not isinstance(value, dict):
        fail(f"{path}: not a JSON object")
    return value


HF_LAYER = {"self_attn.out_proj": "attn.out_proj", "layer_norm1": "ln_1", "layer_norm2": "ln_2",
            "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
HF_VISION = {"vision_model.embeddings.class_embedding": "visual.class_embedding",
             "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
             "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
             "vision_model.pre_layrnorm.weight": "visual.ln_pre.weight",
             "vision_model.pre_layrnorm.bias": "visual.ln_pre.bias",
             "vision_model.post_layernorm.weight": "visual.ln_post.weight",
             "vision_model.post_layernorm.bias": "visual.ln_post.bias"}
HF_TEXT = {"text_model.embeddings.token_embedding.weight": "token_embedding.weight",
           "text_model.embeddings.position_embedding.weight": "positional_embedding",
           "text_model.final_layer_norm.weight": "ln_final.weight",
           "text_model.final_layer_norm.bias": "ln_final.bias", "logit_scale": "logit_scale"}
# Stored (out, in) by HuggingFace, (in, out) by OpenAI.
HF_PROJECTIONS = {"visual_projection.weight": "visual.proj", "text_projection.weight": "text_projection"}


def hf_tower(hf, source, target, weights):
    """Maps one HF encoder (vision_model.encoder / text_model.encoder) onto OpenAI resblocks."""
    out = {}
    layer = re.compile(re.escape(source) + r"\.layers\.(\d+)\.(.+)\.(weight|bias)$")
    qkv = {}
    for name, t in hf.items():
        m = layer.match(name)
        if not m:
            if name.startswith(source + "."):
                fail(f"{weights}: unexpected HuggingFace key {name}")
            continue
        index, part, kind = m.groups()
        prefix = f"{target}.resblocks.{index}."
        if part in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
            qkv.setdefault((f"{source}.layers.{index}.self_attn", prefix, kind), {})[part[10]] = t
        elif part in HF_LAYER:
            out[prefix + HF_LAYER[part] + "." + kind] = t
        else:
            fail(f"{weights}: unexpected HuggingFace key {name}")
    for (hf_prefix, prefix, kind), parts in qkv.items():
        missing = [f"{hf_prefix}.{which}_proj.{kind}" for which in "qkv" if which not in parts]
        if missing:
            fail(f"{weights}: missing {', '.join(missing)}")
        if not parts["q"].shape == parts["k"].shape == parts["v"].shape or parts["q"].dim() not in (1, 2):
            fail(f"{weights}: {hf_prefix}.{{q,k,v}}_proj.{kind} have shapes "
                 f"{[list(parts[w].shape) for w in 'qkv']}, expected three equal ones")
        out[prefix + "attn.in_proj_" + kind] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def read_hf_weights(directory):
    """The tensors of a HuggingFace directory (model.safetensors, else pytorch_model.bin) and the
    file they came from."""
    weights = os.path.join(directory, "model.safetensors")
    if os.path.isfile(weights):
        try:
            return state_dict_of(safetensors_io.load(weights), weights), weights
        except Exception as e:  # anything that does not parse as safetensors
            fail(f"{weights}: not a readable safetensors file ({type(e).__name__}: {e})")
    weights = os.path.join(directory, "pytorch_model.bin")
    if os.path.isfile(weights):
        try:
            hf = torch.load(weights, map_location="cpu")
        except Exception as e:
            fail(f"{weights}: not a PyTorch checkpoint ({type(e).__name__}: {e})")
        return state_dict_of(hf, weights), weights
    fail(f"{directory}: neither model.safetensors nor pytorch_model.bin")


def config_field(config, prefix, key, default, config_path, integer=True):
    """(value, text for messages) of a HuggingFace config field; a field left out has transformers'
    default (save_pretrained omits the fields that equal their defaults)."""
    given = key in config
    value = config[key] if given else default
    text = (f"{prefix}{key} = {json.dumps(value)}" if given
            else f"{prefix}{key} (absent: transformers' default {json.dumps(value)})")
    if integer and (type(value) is not int or value <= 0):
        fail(f"{config_path}: {text} is not a positive integer")
    return value, text


def hf_vision_heads(config, config_path, sizes, weights):
    """The visual tower's heads from a HuggingFace config (transformers' CLIPConfig, the vision
    fields under vision_config, or CLIPVisionModel(WithProjection)'s, the vision fields at the
    top), after checking every size it states against the tensors and the activation, as
    apply_huggingface_config in models/clip_checkpoint.cpp does."""
    nested = "vision_config" in config
    vision, prefix = (config["vision_config"], "vision_config.") if nested else (config, "")
    if not isinstance(vision, dict):
        fail(f"{config_path}: vision_config is not a JSON object")
    # CLIPVisionConfig's defaults (ViT-B/32), and CLIPConfig's projection_dim.
    for fields, pre, key, default, actual, what in (
            (vision, prefix, "hidden_size", 768, sizes["width"], "width"),
            (vision, prefix, "num_hidden_layers", 12, sizes["layers"], "layers"),
            (vision, prefix, "patch_size", 32, sizes["patch"], "patch size"),
            (vision, prefix, "image_size", 224, sizes["image_size"], "image size"),
            (vision, prefix, "num_channels", 3, 3, "input channels"),
            (vision, prefix, "intermediate_size", 3072, sizes["mlp"], "MLP size"),
            (config, "", "projection_dim", 512, sizes["output_dim"], "projection's output size")):
        value, text = config_field(fields, pre, key, default, config_path)
        if actual is not None and value != actual:
            fail(f"{config_path}: {text} contradicts the {what} {actual} of {weights}")
    act, text = config_field(vision, prefix, "hidden_act", "quick_gelu", config_path, integer=False)
    if act != "quick_gelu":
        fail(f"{config_path}: {text}: only CLIP's quick_gelu is supported")
    eps, text = config_field(vision, prefix, "layer_norm_eps", 1e-5, config_path, integer=False)
    if type(eps) not in (int, float) or abs(eps - 1e-5) > 1e-12:
        fail(f"{config_path}: {text}: the C++ tower's LayerNorm epsilon is 1e-05")
    heads, text = config_field(vision, prefix, "num_attention_heads", 12, config_path)
    if sizes["width"] % heads:
        fail(f"{config_path}: {text} does not divide the width {sizes['width']}")
    return heads


def text_sizes(state, source):
    """The text tower's sizes read off its shapes, as infer_text_config in models/clip_text.cpp
    reads them: {vocab, width, context, output_dim, layers, mlp} (None for what is absent), or
    None without a text tower (no token_embedding.weight)."""
    if "token_embedding.weight" not in state:
        return None
    embedding = state["token_embedding.weight"]
    if embedding.dim() != 2:
        fail(f"{source}: token_embedding.weight has shape {list(embedding.shape)}, expected (vocabulary, width)")
    pos, proj = state.get("positional_embedding"), state.get("text_projection")
    fc = state.get("transformer.resblocks.0.mlp.c_fc.weight")
    indices = [int(m.group(1)) for m in map(re.compile(r"transformer\.resblocks\.(\d+)\.").match, state) if m]
    return {"vocab": embedding.shape[0], "width": embedding.shape[1],
            "context": pos.shape[0] if pos is not None and pos.dim() == 2 else None,
            "output_dim": proj.shape[1] if proj is not None and proj.dim() == 2 else None,
            "layers": 1 + max(indices) if indices else None,
            "mlp": fc.shape[0] if fc is not None and fc.dim() == 2 else None}


def hf_text_heads(config, config_path, sizes, weights):
    """The text tower's heads from a CLIPConfig's text_config (transformers' CLIPTextConfig
    defaults where a field is absent), after checking every size it states against the tensors
    and CLIP's blocks, as apply_huggingface_config in models/clip_text_checkpoint.cpp does."""
    text_config = config.get("text_config", {})
    if not isinstance(text_config, dict):
        fail(f"{config_path}: text_config is not a JSON object")
    for fields, pre, key, default, actual, what in (
            (text_config, "text_config.", "vocab_size", 49408, sizes["vocab"], "vocabulary size"),
            (text_config, "text_config.", "max_position_embeddings", 77, sizes["context"], "context length"),
            (text_config, "text_config.", "hidden_size", 512, sizes["width"], "width"),
            (text_config, "text_config.", "num_hidden_layers", 12, sizes["layers"], "layers"),
            (text_config, "text_config.", "intermediate_size", 2048, sizes["mlp"], "MLP size"),
            (config, "", "projection_dim", 512, sizes["output_dim"], "text projection's output size")):
        value, text = config_field(fields, pre, key, default, config_path)
        if actual is not None and value != actual:
            fail(f"{config_path}: {text} contradicts the {what} {actual} of {weights}")
    act, text = config_field(text_config, "text_config.", "hidden_act", "quick_gelu", config_path, integer=False)
    if act != "quick_gelu":
        fail(f"{config_path}: {text}: only CLIP's quick_gelu is supported")
    eps, text = config_field(text_config, "text_config.", "layer_norm_eps", 1e-5, config_path, integer=False)
    if type(eps) not in (int, float) or abs(eps - 1e-5) > 1e-12:
        fail(f"{config_path}: {text}: the C++ tower's LayerNorm epsilon is 1e-05")
    heads, text = config_field(text_config, "text_config.", "num_attention_heads", 8, config_path)
    if sizes["width"] % heads:
        fail(f"{config_path}: {text} does not divide the text width {sizes['width']}")
    return heads


def read_huggingface(directory):
    """A transformers CLIPModel directory, or a vision-only one (CLIPVisionModelWithProjection:
    vision_model.* and visual_projection, no text model)."""
    config_path = os.path.join(directory, "config.json")
    if not os.path.isfile(config_path):
        fail(f"{directory}: no config.json: not a HuggingFace model directory")
    config = read_json(config_path)
    hf, weights = read_hf_weights(directory)
    has_text = any(k.startswith("text_model.") for k in hf)
    required = list(HF_VISION) + ["visual_projection.weight"]
    required += list(HF_TEXT) + ["text_projection.weight"] if has_text else []
    missing = [name for name in required if name not in hf]
    if missing:
        fail(f"{weights}: missing {', '.join(missing)}"
             + (" (a CLIPVisionModel without projection gives no CLIP features)" if missing == ["visual_projection.weight"] else ""))
    if not any(k.startswith("vision_model.encoder.layers.") for k in hf):
        fail(f"{weights}: no vision_model.encoder.layers")
    state = {ours: hf[theirs] for theirs, ours in HF_VISION.items()}
    state.update(hf_tower(hf, "vision_model.encoder", "visual.transformer", weights))
    if has_text:
        state.update({ours: hf[theirs] for theirs, ours in HF_TEXT.items()})
        state.update(hf_tower(hf, "text_model.encoder", "transformer", weights))
    for theirs, ours in HF_PROJECTIONS.items():
        if theirs in hf:
            if hf[theirs].dim() != 2:
                fail(f"{weights}: {theirs} has shape {list(hf[theirs].shape)}, expected (output dim, width)")
            state[ours] = hf[theirs].t().contiguous()
    sizes = visual_sizes(state, weights, {ours: theirs for theirs, ours in HF_VISION.items()}
                         | {"visual.proj": "visual_projection.weight (transposed)"})
    heads = hf_vision_heads(config, config_path, sizes, weights)
    text_heads = hf_text_heads(config, config_path, text_sizes(state, weights), weights) if has_text else None
    return Source(state, heads, text_heads)


# --- the text tower's heads -----------------------------------------------------------------

def text_heads(source, path, given):
    """The text tower's attention heads, recorded in the output as 'text_heads': `given`
    (--text-heads), else a HuggingFace config's, else width / 64 as in OpenAI CLIP. None when the
    source has no text tower (a vision-only model)."""
    sizes = text_sizes(source.state, path)
    if sizes is None:
        if given is not None:
            fail(f"{path}: --text-heads is given, but the checkpoint has no text tower")
        return None
    return tower_heads(path, "text", sizes["width"], given, source.text_heads,
                       "give the text tower's attention heads with --text-heads")


def tower_heads(path, tower, width, given, recorded, how_to_give):
    """A tower's attention heads: `given` on the command line, else `recorded` by the source (a
    HuggingFace config), else width / 64 as in OpenAI CLIP; they must divide the width."""
    if given is not None:
        heads = given
    elif recorded is not None:
        heads = recorded
    elif width % 64 == 0:
        heads = width // 64
    else:
        fail(f"{path}: the {tower} width {width} is not a multiple of CLIP's head size 64: {how_to_give}")
    if heads <= 0 or width % heads:
        fail(f"{path}: {heads} attention heads do not divide the {tower} width {width}")
    return heads


# Options of the converter's former zero-shot head path; cftrain zeroshot-head makes the head now.
HEAD_OPTIONS = ("--classnames", "--templates", "--head-out", "--bpe")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="OpenAI .pt, open_clip checkpoint, or HuggingFace CLIPModel (or "
                        "CLIPVisionModelWithProjection) directory")
    parser.add_argument("--out", required=True, help="output .safetensors (OpenAI names)")
    parser.add_argument("--dtype", choices=("f32", "f16"), default="f32", help="stored precision (default f32)")
    parser.add_argument("--heads", type=int, help="attention heads of the visual tower (default: a HuggingFace "
                        "config's, else width / 64 as in OpenAI CLIP; open_clip's ViT-H/14 and ViT-g/14 need it)")
    parser.add_argument("--text-heads", type=int, help="attention heads of the text tower (default: a HuggingFace "
                        "config's text_config, else text width / 64 as in OpenAI CLIP)")
    for option in HEAD_OPTIONS:  # refused below with a pointer to cftrain, not argparse's usage text
        parser.add_argument(option, nargs="?", const="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    given = [option for option in HEAD_OPTIONS if getattr(args, option[2:].replace("-", "_")) is not None]
    if given:
        fail(f"{', '.join(given)}: the converter no longer makes zero-shot heads; convert, then make the head "
             "with `cftrain zeroshot-head --weights CONVERTED.safetensors [--classnames FILE] [--templates FILE] "
             "--out head.npy`")

    source = read_source(args.source)
    state = source.state
    heads = tower_heads(args.source, "visual", state["visual.conv1.weight"].shape[0], args.heads, source.heads,
                        "give the attention heads with --heads")
    heads_text = text_heads(source, args.source, args.text_heads)
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        fail(f"{args.out}: no such directory {os.path.dirname(os.path.abspath(args.out))}")
    dtype = torch.float16 if args.dtype == "f16" else torch.float32
    converted = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}
    # Shapes do not tell the number of heads: the file records both towers' for the C++ loaders.
    metadata = {"source": os.path.basename(os.path.normpath(args.source)), "converter": "weights/convert_clip.py",
                "heads": heads}
    if heads_text is not None:
        metadata["text_heads"] = heads_text
    try:
        safetensors_io.save(args.out, converted, metadata, quiet=True)
    except OSError as e:
        fail(f"{args.out}: cannot be written ({e.strerror or e})")
    print(f"wrote {args.out}: {len(converted)} tensors ({args.dtype}, {heads} visual attention heads"
          + (f", {heads_text} text attention heads)" if heads_text is not None else ")"))
    if heads_text is not None:
        print(f"zero-shot head: cftrain zeroshot-head --weights {args.out} --out head.npy")


if __name__ == "__main__":
    main()
