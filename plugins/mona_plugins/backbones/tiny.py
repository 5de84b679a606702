"""Tiny random-init bodies of each family for CI: built in code, no downloads, well under a second."""

from __future__ import annotations

import contextlib
import string

import torch

from .configs import ImageBackboneConfig, TextBackboneConfig

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CHARS = string.ascii_lowercase + string.digits + string.punctuation


def char_tokenizer():
    """A BERT-style character-level WordPiece tokenizer ("cat" -> [CLS] c ##a ##t [SEP])."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = list(SPECIALS) + list(CHARS) + ["##" + c for c in CHARS]
    ids = {token: i for i, token in enumerate(vocab)}
    tok = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]",
    )


@contextlib.contextmanager
def _seeded(pretrained: bool):
    """``pretrained`` tiny bodies are a fixed seeded init (stand-in weights); otherwise a fresh random one."""
    if not pretrained:
        yield
        return
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


def build_tiny_bert(config: TextBackboneConfig):
    """BERT with hidden 32, 2 layers, 2 heads and a character vocabulary."""
    from transformers import BertConfig, BertModel

    from .hf import HFBackbone

    tokenizer = char_tokenizer()
    hf_config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=max(128, config.max_tokens), pad_token_id=0,
    )
    with _seeded(config.pretrained):
        model = BertModel(hf_config, add_pooling_layer=False).eval()
    return HFBackbone(model, tokenizer, max_tokens=config.max_tokens, config=config, name="tiny-bert")


def build_tiny_vit(config: ImageBackboneConfig):
    """timm's ``test_vit`` cut to 2 blocks, at 32x32 with 8x8 patches (16 tokens, width 64)."""
    from .timm_adapter import build_timm

    with _seeded(config.pretrained):
        return build_timm(
            "test_vit", None, config, name="tiny-vit", model_kwargs={"patch_size": 8, "depth": 2}, default_size=32
        )


def build_tiny_cnn(config: ImageBackboneConfig):
    """timm's ``test_efficientnet`` (EfficientNet blocks, 0.36 M params) at 64x64 (a 2x2 final map)."""
    from .timm_adapter import build_timm

    with _seeded(config.pretrained):
        return build_timm("test_efficientnet", None, config, name="tiny-cnn", default_size=64)
