"""Architecture sources for `fuzzer.mine`: what to build, how to feed it, the worker that traces.

Every source is an entry in `SOURCES`: `names()` enumerates its architectures and `build(name)`
returns the candidate builds of one, tried in order inside the mining worker. Models are built
from configs only (never `from_pretrained`), shrunk to a few thousand parameters so that each
traces in seconds; the operator sequences and attribute kinds stay those of the real
architecture, only the sizes change.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import multiprocessing as mp
import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import torch

from fuzzer.opgraph import graph_from_fx, graph_from_jit, tensor_rec

# Guard against any accidental hub access: mining must never download anything.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

SEQ_LEN = 8
DEC_LEN = 4
AUDIO_SAMPLES = 4000
INPUT_SEED = 0
MAX_PARAMS = 40_000_000


@dataclass
class Build:
    """One candidate: a model in eval mode, its inputs and what was done to get it."""

    model: torch.nn.Module
    inputs: dict[str, torch.Tensor]
    modality: str
    structure: str
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    names: Callable[[], list[str]]
    # Yields candidates lazily: later ones (milder shrinks, fewer inputs) are only built
    # when the earlier ones fail in eager mode.
    build: Callable[[str], Iterator[Build | Exception]]
    unavailable: Callable[[], str | None]


# ---------------------------------------------------------------- config shrinking (transformers)

_HIDDEN = ("hidden_size", "d_model", "n_embd", "dim", "embed_dim", "emb_dim", "text_hidden_size",
           "out_hidden_size", "projection_dim", "projector_hidden_size", "encoder_hidden_size",
           "decoder_hidden_size", "hidden_dim_model", "output_hidden_size", "pooler_output_size",
           "fusion_hidden_size", "image_text_hidden_size", "d_embed", "word_embed_proj_dim")
_LAYERS = ("num_hidden_layers", "num_layers", "n_layer", "n_layers", "encoder_layers",
           "decoder_layers", "num_decoder_layers", "decoder_num_hidden_layers",
           "decoder_num_layers", "num_encoder_layers", "depth", "num_blocks")
_HEADS = ("num_attention_heads", "n_head", "n_heads", "encoder_attention_heads",
          "decoder_attention_heads", "num_heads", "decoder_num_attention_heads",
          "encoder_num_attention_heads", "linear_num_key_heads", "linear_num_value_heads")
_FFN = ("intermediate_size", "d_ff", "n_inner", "encoder_ffn_dim", "decoder_ffn_dim", "ffn_dim",
        "moe_intermediate_size", "shared_expert_intermediate_size", "decoder_intermediate_size",
        "d_inner", "mlp_dim", "dim_feedforward", "encoder_feedforward_dim", "ffn_hidden_size",
        "hidden_dim", "shared_intermediate_size", "encoder_ffn_size")
_POSITIONS = ("max_position_embeddings", "n_positions", "max_target_positions",
              "max_text_positions")
_EXPERTS = ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts")


@dataclass(frozen=True)
class Level:
    """One shrink level: 0 is aggressive, 1 milder, 2 (hidden=0) keeps all widths and sizes
    and only cuts depth and vocabulary, for architectures with tight size constraints."""

    hidden: int
    heads: int
    layers: int
    ffn: int
    vocab: int
    image: int
    patch: int


LEVELS = (Level(32, 2, 2, 64, 512, 32, 4), Level(64, 4, 2, 128, 1024, 64, 8),
          Level(0, 0, 2, 0, 1024, 0, 0))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _settable(cfg: Any) -> set[str]:
    """Constructor arguments of a config class; derived attributes (Swin's num_layers) are not."""
    return set(inspect.signature(type(cfg).__init__).parameters) - {"self", "args", "kwargs"}


def _shrink_keys(cfg: Any, lv: Level) -> dict[str, Any]:
    """Overrides for one (sub-)config; only constructor keys it has, and only downwards."""
    keys = _settable(cfg)
    attrs = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(cfg).items() if k in keys}
    out: dict[str, Any] = {}
    if attrs.get("use_cache") is True:
        out["use_cache"] = False  # cache objects in outputs defeat both tracers

    def down(key: str, new: int) -> None:
        v = attrs.get(key)
        if _is_int(v) and v > new:
            out[key] = new

    for k in _LAYERS:
        down(k, lv.layers)
    if _is_int(attrs.get("vocab_size")):
        down("vocab_size", lv.vocab)
    if isinstance(attrs.get("depths"), list):
        out["depths"] = [1] * len(attrs["depths"])
    for k in _EXPERTS:
        down(k, 4)
    for k in ("num_experts_per_tok", "num_experts_per_token", "moe_topk", "n_group",
              "topk_group", "first_k_dense_replace", "num_shared_experts", "n_shared_experts"):
        down(k, 2 if "experts_per" in k or k == "moe_topk" else 1)
    if lv.hidden:
        _shrink_widths(attrs, lv, down, out)
    # Per-layer lists (layer_types, mlp_layer_types, ...) must match the new layer count.
    n_old, n_new = attrs.get("num_hidden_layers"), out.get("num_hidden_layers")
    if _is_int(n_old) and n_new is not None:
        for k, v in attrs.items():
            if isinstance(v, list) and len(v) == n_old and k not in out and n_old > 1:
                out[k] = v[:n_new]
    return out


def _shrink_widths(attrs: dict[str, Any], lv: Level, down: Callable[[str, int], None],
                   out: dict[str, Any]) -> None:
    """Widths, heads, experts and image sizes, kept mutually consistent (head_dim, kv heads)."""
    for k in _HIDDEN:
        down(k, lv.hidden)
    for k in _FFN:
        down(k, lv.ffn)
    for k in _POSITIONS:
        down(k, 64)
    old_heads = attrs.get("num_attention_heads")
    for k in _HEADS:
        down(k, lv.heads)
    kv = attrs.get("num_key_value_heads")
    if _is_int(kv) and _is_int(old_heads) and old_heads > 0:
        out["num_key_value_heads"] = max(1, lv.heads * kv // old_heads)
    if _is_int(attrs.get("head_dim")):
        out["head_dim"] = lv.hidden // lv.heads
    for k in ("d_kv", "attention_head_size", "d_head"):
        down(k, lv.hidden // lv.heads)
    for k, new in (("kv_lora_rank", 16), ("q_lora_rank", 16), ("qk_rope_head_dim", 8),
                   ("qk_nope_head_dim", 8), ("v_head_dim", 16), ("qk_head_dim", 16),
                   ("embedding_size", 16), ("linear_key_head_dim", 16),
                   ("linear_value_head_dim", 16), ("sliding_window", 4),
                   ("num_conv_pos_embeddings", 16), ("num_conv_pos_embedding_groups", 2),
                   ("max_source_positions", 16), ("classifier_proj_size", 16),
                   ("xvector_output_dim", 16), ("state_size", 16), ("mamba_d_state", 16),
                   ("num_queries", 8), ("window_size", 2), ("codebook_size", 64),
                   ("num_register_tokens", 1), ("type_vocab_size", 2)):
        down(k, new)
    for k in ("image_size", "patch_size"):
        v = attrs.get(k)
        new = lv.image if k == "image_size" else lv.patch
        if _is_int(v) and v > new:
            out[k] = new
        elif isinstance(v, list) and len(v) == 2 and all(_is_int(x) for x in v):
            out[k] = [min(x, new) for x in v]
    for k, base in (("hidden_sizes", 16), ("embed_dims", 16), ("conv_dim", 0),
                    ("num_heads", 0), ("num_attention_heads", 0)):
        v = attrs.get(k)
        if isinstance(v, list) and v and all(_is_int(x) for x in v):
            if k == "conv_dim":
                out[k] = [lv.hidden] * len(v)
            elif k in ("num_heads", "num_attention_heads"):
                out[k] = [2 ** min(i, 3) for i in range(len(v))]
            else:
                out[k] = [base * 2**i for i in range(len(v))]


def _remap_token_ids(cfg: Any, vocab: int, out: dict[str, Any]) -> None:
    """Special token ids beyond the shrunk vocabulary go to distinct ids at its top."""
    keys = _settable(cfg)
    tok = {k: v for k, v in vars(cfg).items()
           if ("token_id" in k or "token_index" in k) and k not in out and k in keys}
    ids: list[tuple[str, int]] = []
    for k, v in tok.items():
        ids += [(k, x) for x in (v if isinstance(v, list) else [v]) if _is_int(x) and x >= vocab]
    big = sorted({x for _, x in ids})
    new = {x: vocab - 1 - i for i, x in enumerate(big)}
    for k, v in tok.items():
        if _is_int(v) and v in new:
            out[k] = new[v]
        elif isinstance(v, list) and any(_is_int(x) and x in new for x in v):
            out[k] = [new.get(x, x) for x in v]


def _config_cls_overrides(cfg: Any, lv: Level) -> dict[str, Any]:
    """Overrides for a config and, recursively, its sub-configs (as dicts keyed by model_type)."""
    # optional extra [mine]: only the transformers source needs it
    from transformers import PretrainedConfig

    out = _shrink_keys(cfg, lv)
    vocab = out.get("vocab_size", getattr(cfg, "vocab_size", None))
    if _is_int(vocab):
        _remap_token_ids(cfg, vocab, out)
    for k, v in vars(cfg).items():
        if isinstance(v, PretrainedConfig) and k in _settable(cfg):
            sub = _config_cls_overrides(v, lv)
            if sub:
                out[k] = {"model_type": v.model_type, **sub}
    return out


def _apply(cfg: Any, overrides: dict[str, Any]) -> Any:
    """A fresh config of cfg's class: class defaults plus overrides, sub-configs likewise.

    Rebuilding (rather than mutating cfg) lets derived fields such as head_dim or
    layer_types follow the new sizes.
    """
    # optional extra [mine]: only the transformers source needs it
    from transformers import PretrainedConfig

    kwargs: dict[str, Any] = {}
    for k, v in overrides.items():
        cur = getattr(cfg, k, None)
        if isinstance(cur, PretrainedConfig) and isinstance(v, dict):
            kwargs[k] = _apply(cur, {kk: vv for kk, vv in v.items() if kk != "model_type"})
        else:
            kwargs[k] = v
    return type(cfg)(**kwargs)


# ---------------------------------------------------------------- dummy inputs

def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(INPUT_SEED)


def _find(cfg: Any, key: str) -> Any:
    """`key` on the config or its first sub-config that has it (vision_config, audio_config…)."""
    # optional extra [mine]: only the transformers source needs it
    from transformers import PretrainedConfig

    if getattr(cfg, key, None) is not None:
        return getattr(cfg, key)
    for v in vars(cfg).values():
        if isinstance(v, PretrainedConfig) and getattr(v, key, None) is not None:
            return getattr(v, key)
    return None


def _ids(cfg: Any, n: int) -> torch.Tensor:
    vocab = _find(cfg, "vocab_size")
    hi = max(8, min(int(vocab) - 32, 400)) if _is_int(vocab) else 100
    return torch.randint(4, hi, (1, n), generator=_gen())


def _pixels(cfg: Any) -> torch.Tensor:
    size = _find(cfg, "image_size")
    h, w = (size, size) if _is_int(size) else (tuple(size) if size else (64, 64))
    c = _find(cfg, "num_channels") or _find(cfg, "in_channels") or 3
    return torch.randn(1, int(c), int(h), int(w), generator=_gen())


def _audio_values(cfg: Any) -> torch.Tensor:
    ch = _find(cfg, "audio_channels")
    shape = (1, int(ch), AUDIO_SAMPLES) if _is_int(ch) else (1, AUDIO_SAMPLES)
    return torch.randn(*shape, generator=_gen())


def _features(cfg: Any) -> list[torch.Tensor]:
    """input_features layouts: Whisper-style (B, mel, 2*positions) and (B, T, feat)."""
    mel, src = _find(cfg, "num_mel_bins"), _find(cfg, "max_source_positions")
    out: list[torch.Tensor] = []
    if _is_int(mel) and _is_int(src):
        out.append(torch.randn(1, mel, 2 * src, generator=_gen()))
    per, ch = _find(cfg, "input_feat_per_channel"), _find(cfg, "input_channels") or 1
    feat = per * ch if _is_int(per) else (_find(cfg, "feature_size") or mel or 80)
    out.append(torch.randn(1, 32, int(feat), generator=_gen()))
    if _is_int(mel):
        out.append(torch.randn(1, mel, 32, generator=_gen()))
    return out


def _input_sets(model: torch.nn.Module, cfg: Any) -> list[dict[str, torch.Tensor]]:
    """Candidate input dicts: all recognised inputs first, then the main input alone."""
    params = inspect.signature(model.forward).parameters
    main = getattr(model, "main_input_name", "input_ids")
    makers: dict[str, Callable[[], list[torch.Tensor]]] = {
        "input_ids": lambda: [_ids(cfg, SEQ_LEN)],
        "pixel_values": lambda: [_pixels(cfg)],
        "input_values": lambda: [_audio_values(cfg)],
        "input_features": lambda: _features(cfg),
    }
    extra: dict[str, torch.Tensor] = {}
    if getattr(cfg, "is_encoder_decoder", False) and "decoder_input_ids" in params:
        extra["decoder_input_ids"] = _ids(cfg, DEC_LEN)
    present = [k for k in makers if k in params]
    if main in makers and main not in present:
        present.insert(0, main)
    sets: list[dict[str, torch.Tensor]] = []
    if len(present) > 1:
        sets.append({k: makers[k]()[0] for k in present} | extra)
    if main in makers:
        sets += [{main: t} | extra for t in makers[main]()]
    for k in present:
        if k != main:
            sets += [{k: t} | extra for t in makers[k]()]
    return sets


def _modality(inputs: dict[str, torch.Tensor]) -> str:
    kinds = {"input_ids": "text", "pixel_values": "vision",
             "input_values": "audio", "input_features": "audio"}
    found = sorted({kinds[k] for k in inputs if k in kinds})
    if not found and "decoder_input_ids" in inputs:
        return "text"
    return found[0] if len(found) == 1 else "multimodal" if found else "other"


# ---------------------------------------------------------------- sources

def _tf_names() -> list[str]:
    # optional extra [mine]: only the transformers source needs it
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    return sorted(MODEL_MAPPING_NAMES)


def _tf_structure(model_type: str, cfg: Any) -> str:
    # optional extra [mine]: only the transformers source needs it
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if getattr(cfg, "is_encoder_decoder", False):
        return "encoder-decoder"
    return "decoder" if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES else "encoder"


def _tf_build(model_type: str) -> Iterator[Build | Exception]:
    # optional extra [mine]: only the transformers source needs it
    import transformers
    from transformers import AutoConfig, AutoModel

    transformers.logging.set_verbosity_error()
    default = AutoConfig.for_model(model_type)
    for lv in LEVELS:
        overrides = _config_cls_overrides(default, lv)
        try:
            try:
                cfg = _apply(default, overrides)
            except Exception:
                # Some composite configs refuse sub-config objects; the factory takes dicts.
                cfg = AutoConfig.for_model(model_type, **overrides)
            if not lv.hidden:
                # Level 2 keeps real widths: size it on the meta device first, as a wide MoE
                # would need tens of GB.
                with torch.device("meta"):
                    n_params = sum(p.numel() for p in AutoModel.from_config(cfg).parameters())
                if n_params > MAX_PARAMS:
                    raise ValueError(f"{n_params / 1e6:.0f}M parameters at full width (cap "
                                     f"{MAX_PARAMS / 1e6:.0f}M)")
            model = AutoModel.from_config(cfg).eval()
        except Exception as e:
            yield e
            continue
        for inputs in _input_sets(model, cfg):
            yield Build(model, inputs, _modality(inputs), _tf_structure(model_type, cfg),
                        overrides)


def _importable(module: str) -> Callable[[], str | None]:
    def check() -> str | None:
        return None if importlib.util.find_spec(module) else f"{module} is not importable"

    return check


def _tv_names() -> list[str]:
    tvm = importlib.import_module("torchvision.models")
    return sorted(tvm.list_models(module=tvm))


def _tv_build(name: str) -> Iterator[Build | Exception]:
    tvm = importlib.import_module("torchvision.models")
    model = tvm.get_model(name, weights=None).eval()
    size = 299 if "inception" in name else 64
    x = torch.randn(1, 3, size, size, generator=_gen())
    yield Build(model, {"x": x}, "vision", "encoder", {"weights": None})


def _timm_names() -> list[str]:
    timm = importlib.import_module("timm")
    return sorted(timm.list_models())


def _timm_build(name: str) -> Iterator[Build | Exception]:
    timm = importlib.import_module("timm")
    model = timm.create_model(name, pretrained=False).eval()
    size = model.default_cfg.get("input_size", (3, 224, 224))
    x = torch.randn(1, *size, generator=_gen())
    yield Build(model, {"x": x}, "vision", "encoder", {"pretrained": False})


SOURCES: dict[str, Source] = {
    "transformers": Source(_tf_names, _tf_build, _importable("transformers")),
    "torchvision": Source(_tv_names, _tv_build, _importable("torchvision")),
    "timm": Source(_timm_names, _timm_build, _importable("timm")),
}


# ---------------------------------------------------------------- the worker (one architecture)

def _error_line(e: BaseException) -> str:
    line = next((s for s in str(e).splitlines() if s.strip()), "")
    line = re.sub(r"\b0x[0-9a-fA-F]{8,}\b", "0x?", line)  # addresses break determinism
    return f"{type(e).__name__}: {line}"[:300]


def _leaves(x: Any) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, dict):
        return [t for v in x.values() for t in _leaves(v)]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _leaves(v)]
    return []  # caches and other non-tensor outputs


class _Flat(torch.nn.Module):
    """Positional inputs in, a flat tuple of tensors out: the form both tracers accept."""

    def __init__(self, model: torch.nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(_leaves(self.model(**dict(zip(self.names, args, strict=True)))))


def trace_one(source: str, name: str) -> dict[str, Any]:
    """Build, run in eager, export (else jit.trace) one architecture; runs in the worker.

    Returns its archs.json record plus `graph` (a `fuzzer.opgraph.OpGraph`) when traced.
    """
    rec: dict[str, Any] = {"name": name, "source": source, "status": "failed", "method": None,
                           "errors": {}}
    traced = 0
    try:
        for cand in SOURCES[source].build(name):
            if isinstance(cand, Exception):
                rec["errors"].setdefault("build", _error_line(cand))
                continue
            rec.update(modality=cand.modality, structure=cand.structure, config=cand.config,
                       inputs={k: tensor_rec(v) for k, v in cand.inputs.items()})
            try:
                with torch.no_grad():
                    cand.model(**cand.inputs)
            except Exception as e:  # invalid candidate, not a tracer failure: try the next
                rec["errors"].setdefault("eager", _error_line(e))
                continue
            rec["errors"].pop("eager", None)
            traced += 1
            model, args = _Flat(cand.model, list(cand.inputs)), tuple(cand.inputs.values())
            try:
                ep = torch.export.export(model, args, strict=False)
                rec.update(graph=graph_from_fx(ep.graph_module), method="export", status="ok")
                rec["errors"].pop("jit.trace", None)
                rec["errors"].pop("export", None)
                break
            except Exception as e:
                rec["errors"]["export"] = _error_line(e)
            try:
                tr = torch.jit.trace(model, args, strict=False, check_trace=False)
                rec.update(graph=graph_from_jit(tr.inlined_graph), method="jit.trace",
                           status="fallback")
                rec["errors"].pop("jit.trace", None)
                break
            except Exception as e:
                rec["errors"]["jit.trace"] = _error_line(e)
            if traced >= 2:
                break
        if not rec["errors"] and rec["status"] == "failed":
            rec["errors"]["inputs"] = "no input this miner can make (input_ids, pixel_values, " \
                                      "input_values, input_features)"
    except Exception as e:
        rec["errors"].setdefault("build", _error_line(e))
    return rec


def _worker(conn: Connection) -> None:
    warnings.filterwarnings("ignore")
    # Failed exports print whole graphs; keep the miner's own output readable.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    torch.set_num_threads(1)  # one core: the machine is shared
    while True:
        job = conn.recv()
        if job is None:
            return
        # Weight init draws from torch's global RNG; a scoped fixed seed keeps runs identical.
        with torch.random.fork_rng():
            torch.manual_seed(0)
            conn.send(trace_one(*job))


class Pool:
    """One worker process at a time, replaced when it times out, dies or has aged."""

    def __init__(self, timeout: float, recycle_after: int = 40) -> None:
        self.timeout, self.recycle_after = timeout, recycle_after
        self.ctx = mp.get_context("spawn")  # no fork: torch threads do not survive it
        self.proc: Any = None
        self.jobs = 0

    def _start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.jobs = 0

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.conn.send(None)
            self.proc.join(5)
        except OSError:
            pass
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.proc = None

    def run(self, source: str, name: str) -> dict[str, Any]:
        # A fresh worker every so often: torch/transformers caches only grow.
        if self.proc is None or self.jobs >= self.recycle_after:
            self.stop()
            self._start()
        self.jobs += 1
        self.conn.send((source, name))
        try:
            if self.conn.poll(self.timeout):
                return self.conn.recv()
            err = f"Timeout: no result after {self.timeout:.0f} s"
        except EOFError:
            self.proc.join(5)
            err = f"WorkerDied: exit code {self.proc.exitcode}"
        self.proc.kill()
        self.proc.join()
        self.proc = None
        return {"name": name, "source": source, "status": "failed", "method": None,
                "errors": {"worker": err}}
