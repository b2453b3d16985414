"""Loading a ``transformers`` model for the ``hf`` backend: from a directory, a GGUF file or
the Hub, with one-line errors, and the on-disk cache of dequantized GGUF conversions
(transformers dequantizes GGUF on every load, slowly; the conversion is kept as safetensors)."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from .errors import UserError

# A conversion temp dir older than this was left by a killed process and may be removed.
STALE_CONVERSION_S = 3600.0


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------
# What transformers raises for a model it cannot read (missing files, bad config, no gguf).
LOAD_ERRORS = (OSError, ValueError, KeyError, RuntimeError, ImportError)

@dataclass
class Loaded:
    model: Any
    tokenizer: Any
    device: Any  # where input tensors go (the embedding layer's device)
    pad_id: int
    eos_ids: list[int]
    # forward() keywords, renamed across transformers versions:
    cache_arg: str  # the KV cache: "cache" (5.x) or "past_key_values"
    last_logits_only: dict[str, int]  # compute logits for the last position only, if supported
    context_window: int | None = None  # the positions the model was trained for (its config)


def prefer_sleeping_openmp_threads() -> None:
    """Let torch's OpenMP threads sleep rather than spin while they wait for work.

    Spinning threads collapse when the cores are shared with other processes (a 10-token
    generation measured 25-60 s instead of 2.5 s on 2 busy cores). The user's own
    OMP_WAIT_POLICY wins; it only takes effect if torch is not imported yet.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def looks_like_path(spec: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else path-like is a (missing) local path.
    return spec.startswith(("/", "./", "../", "~", ".\\")) or spec.count("/") > 1


def _resolve_dtype(dtype: Any, on_gpu: bool) -> Any:
    import torch

    if dtype is None:
        # float32 on CPU: exact enough that batched and single scores agree to 1e-4.
        return "auto" if on_gpu else torch.float32
    if isinstance(dtype, str) and dtype != "auto":
        resolved = getattr(torch, dtype, None)
        if not isinstance(resolved, torch.dtype):
            raise UserError(f"unknown dtype {dtype!r}: use float32, float16, bfloat16 or auto")
        return resolved
    return dtype


def placement_kwargs(device_map: str | None, dtype: Any, tp_plan: str | None = None) -> dict[str, Any]:
    import torch

    on_gpu = torch.cuda.is_available()
    kwargs: dict[str, Any] = {"dtype": _resolve_dtype(dtype, on_gpu)}
    if on_gpu and tp_plan:
        kwargs["tp_plan"] = tp_plan  # tensor parallel over the ranks of torch.distributed.run
    elif on_gpu and device_map:
        kwargs["device_map"] = device_map  # accelerate spreads a big model over the GPUs
    return kwargs


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick connect to the Hub, so a machine without network fails fast, not after retries."""
    if any(os.environ.get(flag, "") not in ("", "0") for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def require_torch_and_transformers() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise UserError(f"the hf and local backends need torch and transformers ({exc}): pip install 'rafa_core[hf]'") from None


def from_pretrained(source: str, placement: dict[str, Any], **extra: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, **extra)
    model = AutoModelForCausalLM.from_pretrained(source, **placement, **extra)
    return model, tokenizer


def load_model_and_tokenizer(
    spec: str, gguf_file: str | None, placement: dict[str, Any]
) -> tuple[Any, Any]:
    """Load from a local directory (optionally a GGUF inside it) or a Hub id; one-line errors."""
    path = Path(spec).expanduser()
    extra: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
    if path.exists():
        try:
            return from_pretrained(str(path), placement, **extra)
        except LOAD_ERRORS as exc:
            raise UserError(f"cannot load model from {path}: {one_line(exc)}") from None
    try:
        return from_pretrained(spec, placement, local_files_only=True, **extra)
    except (OSError, ValueError):
        pass  # not in the local Hugging Face cache: try the Hub below
    if not _hub_reachable():
        raise UserError(
            f"unknown model {spec!r}: not a local path, not in the Hugging Face cache, "
            "and the Hub is unreachable (no network or HF_HUB_OFFLINE set)"
        )
    try:
        return from_pretrained(spec, placement, **extra)
    except LOAD_ERRORS as exc:
        raise UserError(f"cannot load Hugging Face model {spec!r}: {one_line(exc)}") from None


def finish_loading(model: Any, tokenizer: Any) -> Loaded:
    model.eval()
    eos = model.generation_config.eos_token_id
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos_ids:
        eos_ids.append(tokenizer.eos_token_id)
    forward_params = inspect.signature(model.forward).parameters
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = eos_ids[0] if eos_ids else 0
    return Loaded(
        model=model,
        tokenizer=tokenizer,
        device=model.get_input_embeddings().weight.device,
        pad_id=int(pad_id),
        eos_ids=eos_ids,
        cache_arg="cache" if "cache" in forward_params else "past_key_values",
        last_logits_only=next(
            ({name: 1} for name in ("logits_to_keep", "num_logits_to_keep") if name in forward_params), {}
        ),
        context_window=_trained_context(model.config),
    )


def _trained_context(config: Any) -> int | None:
    """The context length a model was trained for, from its config (names vary by family)."""
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


# -- the converted-GGUF disk cache ------------------------------------------------------
def converted_gguf_dir(gguf: Path, cache_root: Path) -> Path:
    """Where the conversion of this exact GGUF file lives: keyed by its size and mtime."""
    stat = gguf.stat()
    return cache_root / f"{stat.st_size}-{stat.st_mtime_ns}"


def ensure_converted(gguf: Path, cache_root: Path, convert: Callable[[Path, Path], None]) -> tuple[Path, bool]:
    """Return (directory of the converted model, whether it was converted just now).

    ``convert(gguf, out_dir)`` writes the model into ``out_dir``. It writes into a temp dir
    that is renamed into place only when complete, so a killed conversion leaves no broken
    cache; two processes converting at once both succeed (the first rename wins).
    """
    target = converted_gguf_dir(gguf, cache_root)
    if (target / "config.json").is_file():
        return target, False
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".converting-", dir=cache_root))
    except OSError as exc:
        raise UserError(f"cannot write the model cache {cache_root}: {exc}") from None
    try:
        convert(gguf, scratch)
        try:
            os.rename(scratch, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
            shutil.rmtree(scratch, ignore_errors=True)  # another process finished first
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    _prune_old_conversions(cache_root, keep=target)
    return target, True


def _prune_old_conversions(cache_root: Path, keep: Path) -> None:
    """Drop conversions of older GGUF files and temp dirs of killed conversions (best effort)."""
    now = time.time()
    for entry in cache_root.iterdir():
        if entry == keep or not entry.is_dir():
            continue
        if entry.name.startswith(".converting-"):
            try:
                if now - entry.stat().st_mtime < STALE_CONVERSION_S:
                    continue  # maybe another process converting right now
            except OSError:
                continue
        shutil.rmtree(entry, ignore_errors=True)


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize a GGUF with transformers and save it as safetensors (float32)."""
    import torch

    print(f"converting {gguf.name} once for fast later loads (about 30 s) ...", file=sys.stderr)
    model, tokenizer = load_model_and_tokenizer(
        str(gguf.parent), gguf.name, {"dtype": torch.float32}
    )
    # The weights are already dequantized; transformers still refuses to save a model that
    # came from GGUF unless the quantizer marker is dropped.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "source.json").write_text(
        json.dumps({"gguf": str(gguf), "size": gguf.stat().st_size}), encoding="utf-8"
    )
