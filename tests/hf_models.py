"""Small randomly initialised Hugging Face CTC models, saved offline, for the import tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch

VOCAB = ("<pad>", "<s>", "</s>", "<unk>", "|", *"ETAOINSHRDLU'")
# (model class name, stable-layer-norm layout): every supported class and layout
KINDS = (("Wav2Vec2ForCTC", False), ("Wav2Vec2ForCTC", True), ("HubertForCTC", False), ("HubertForCTC", True),
         ("Data2VecAudioForCTC", False))


def build_hf_model(kind: str, stable: bool, out: Path, *, seed: int = 0, safetensors: bool = True,
                   layers: int = 2) -> torch.nn.Module:
    """Save a tiny ``kind`` model (eval mode) with ``vocab.json`` and a preprocessor config to ``out``.

    Weights are redrawn at a large scale so that the CTC outputs are far from uniform (the
    library's own initialisation gives near-constant log-probs that would hide mapping errors)."""
    import transformers as tf

    common = dict(hidden_size=32, num_hidden_layers=layers, num_attention_heads=4, intermediate_size=48,
                  conv_dim=(16, 16, 16, 16), conv_kernel=(10, 3, 3, 2), conv_stride=(5, 4, 4, 4),
                  num_conv_pos_embedding_groups=4, vocab_size=len(VOCAB), pad_token_id=0,
                  hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
                  final_dropout=0.0, layerdrop=0.0)
    torch.manual_seed(seed)
    if kind == "Data2VecAudioForCTC":
        model = tf.Data2VecAudioForCTC(tf.Data2VecAudioConfig(**common, num_conv_pos_embeddings=3,
                                                              conv_pos_kernel_size=5))
    else:
        cls, config_cls = {"Wav2Vec2ForCTC": (tf.Wav2Vec2ForCTC, tf.Wav2Vec2Config),
                           "HubertForCTC": (tf.HubertForCTC, tf.HubertConfig)}[kind]
        model = cls(config_cls(**common, num_conv_pos_embeddings=16, do_stable_layer_norm=stable,
                               feat_extract_norm="layer" if stable else "group", conv_bias=stable))
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.35 if p.dim() > 1 else 0.2
            p.copy_(torch.randn_like(p) * scale + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
    model.eval()
    model.save_pretrained(str(out), safe_serialization=safetensors)
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}))
    (out / "preprocessor_config.json").write_text(json.dumps(
        {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "do_normalize": True, "sampling_rate": 16000,
         "feature_size": 1, "padding_value": 0.0, "return_attention_mask": stable}))
    return model
