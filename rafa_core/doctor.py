"""``python -m rafa_core doctor [--online]``: is this machine ready to run RAFA?

One line per check, ``OK`` / ``WARN`` / ``FAIL``, each with what to do about it. Exit code 0
when nothing FAILs, else 1. Offline by default (a few seconds: versions are read from the
installed packages' metadata, and torch is imported only to count the GPUs of a CUDA build);
``--online`` also asks the configured endpoint for its model list.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .cli import ArgumentParser, default_cache_dir
from .llm.errors import UserError

REPO = Path(__file__).resolve().parents[1]
OK, WARN, FAIL = "OK", "WARN", "FAIL"
MIN_PYTHON = (3, 10)
PINNED_ENGINE = {"alfworld": "0.4.2", "textworld": "1.7.0"}  # pyproject.toml's alfworld extra
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA_MARKER = re.compile(r"extra\s*==\s*['\"]([^'\"]+)['\"]")


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.status:<4}  {self.name}: {self.detail}" + (f" -> {self.fix}" if self.fix else "")


# -- what is installed ------------------------------------------------------------------------
def installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def declared_requirements() -> dict[str, list[str]]:
    """Distribution names per extra ("" = core) from pyproject.toml of this checkout, else
    from the installed project's metadata."""
    lines: list[str] = []
    pyproject = REPO / "pyproject.toml"
    try:
        import tomllib

        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        lines = list(project.get("dependencies", []))
        for extra, reqs in project.get("optional-dependencies", {}).items():
            lines += [f"{r}; extra == '{extra}'" for r in reqs]
    except (ImportError, OSError, KeyError, ValueError):
        lines = list(metadata.requires("rafa_core") or []) if installed_version("rafa_core") else []
    needs: dict[str, list[str]] = {"": []}
    for requirement in lines:
        name = _REQUIREMENT.match(requirement)
        extra = _EXTRA_MARKER.search(requirement)
        if name:
            needs.setdefault(extra.group(1) if extra else "", []).append(name.group(1))
    return needs


# -- the checks -------------------------------------------------------------------------------
def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < MIN_PYTHON:
        return Check("python", FAIL, f"{version} at {sys.executable}", "RAFA needs Python >= 3.10")
    return Check("python", OK, f"{version} at {sys.executable}")


def check_dependencies() -> Iterator[Check]:
    needs = declared_requirements()
    if not needs[""]:
        yield Check("dependencies", WARN, "cannot read the project's requirements", "run from a clone or install rafa_core")
        return
    missing_core = [d for d in needs[""] if installed_version(d) is None]
    if missing_core:
        yield Check("dependencies", FAIL, f"missing {', '.join(missing_core)}",
                    "scripts/test.sh builds .venv with everything; or pip install -e .")
    else:
        yield Check("dependencies", OK, f"{len(needs[''])} core packages installed")
    have, lacking = [], []
    for extra, dists in needs.items():
        if extra:
            missing = [d for d in dists if installed_version(d) is None]
            (lacking if missing else have).append(f"{extra} (no {', '.join(missing)})" if missing else extra)
    if lacking:
        names = ",".join(x.split(" ")[0] for x in lacking)
        yield Check("extras", WARN, f"installed: {', '.join(have) or 'none'}; missing: {'; '.join(lacking)}",
                    f"pip install -e '.[{names}]' (torch first: see README 'PyTorch')")
    else:
        yield Check("extras", OK, f"all installed: {', '.join(have)}")


def check_torch() -> Check:
    version = installed_version("torch")
    if version is None:
        return Check("torch", WARN, "not installed (hf and local backends need it)",
                     f"CPU build: pip install torch --index-url {TORCH_CPU_INDEX}")
    local = version.partition("+")[2]
    cuda_packages = [d.metadata["Name"] for d in metadata.distributions()
                     if (d.metadata["Name"] or "").lower().startswith("nvidia-")]
    if local == "cpu" or (not local and not cuda_packages):
        return Check("torch", OK, f"{version}, CPU build (device: cpu)")
    import torch  # only here: a CUDA build's devices are known only to torch itself

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    build = f"{version}, {'ROCm' if local.startswith('rocm') else 'CUDA'} build"
    if gpus:
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(gpus))
        return Check("torch", OK, f"{build}, {gpus} GPU(s): {names}")
    return Check("torch", WARN, f"{build} ({len(cuda_packages)} nvidia-* packages) but no GPU visible: runs on CPU",
                 f"on a machine without a GPU the CPU build is GBs smaller: "
                 f"pip install --force-reinstall torch=={version.partition('+')[0]} --index-url {TORCH_CPU_INDEX}")


def check_embedded_model() -> Check:
    from .llm.hf import LOCAL_INSTALL_HINT, embedded_gguf

    try:
        gguf = embedded_gguf()
    except UserError:
        return Check("embedded model", WARN, "the SmolLM2 GGUF file is not installed (backend `local`)", LOCAL_INSTALL_HINT)
    return Check("embedded model", OK, f"{gguf} ({gguf.stat().st_size / 1e6:.0f} MB)")


def check_game24_data() -> Check:
    from .game24.data import INSTALL_HINT, bundled_csv

    try:
        csv = bundled_csv()
    except UserError:
        return Check("game24 data", WARN, "24.csv (tree-of-thoughts-llm wheel) not found", f"{INSTALL_HINT}, or --task_file_path")
    return Check("game24 data", OK, f"{csv}")


def check_alfworld_engine() -> Check:
    versions = {name: installed_version(name) for name in PINNED_ENGINE}
    if not all(versions.values()):
        return Check("alfworld engine", WARN, "alfworld/textworld not installed (ALFWorld runs need them)",
                     "pip install -e '.[alfworld]'")
    from .alfworld.prompts import put_syntax

    syntax = "move X to Y" if put_syntax() == "move" else "put X in/on Y"
    detail = f"alfworld {versions['alfworld']}, textworld {versions['textworld']}; commands use `{syntax}`"
    if versions != PINNED_ENGINE:
        pins = ", ".join(f"{k}=={v}" for k, v in PINNED_ENGINE.items())
        return Check("alfworld engine", WARN, detail + " (not the tested versions)", f"pip install {pins}")
    return Check("alfworld engine", OK, detail)


def check_alfworld_data() -> Check:
    value = os.environ.get("ALFWORLD_DATA", "").strip()
    hint = "alfworld-download, or python -m rafa_core.alfworld.make_games --out DIR; then export ALFWORLD_DATA=DIR"
    if not value:
        return Check("ALFWORLD_DATA", WARN, "not set (ALFWorld runs need it, or --data DIR)", hint)
    root = Path(value).expanduser()
    if not root.is_dir():
        return Check("ALFWORLD_DATA", FAIL, f"{value} is not a directory", hint)
    splits = {}
    for split in ("train", "valid_seen", "valid_unseen"):
        folder = root / "json_2.1.1" / split
        splits[split] = sum(1 for _ in folder.rglob("game.tw-pddl")) if folder.is_dir() else 0
    if not any(splits.values()):
        return Check("ALFWORLD_DATA", FAIL, f"{value} holds no games (json_2.1.1/*/**/game.tw-pddl)", hint)
    counts = ", ".join(f"{n} {split}" for split, n in splits.items())
    return Check("ALFWORLD_DATA", OK, f"{value}: {counts} games")


def check_cache(cache: Path) -> Check:
    fix = "pass --cache DIR (or set RAFA_CACHE_DIR) to a writable directory, or run with --no-cache"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        probe = cache / f".doctor-{os.getpid()}"
        probe.write_text("ok", encoding="utf-8")
        probe.unlink()
    except OSError as exc:
        return Check("response cache", FAIL, f"{cache} is not writable ({exc.strerror or exc})", fix)
    size = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
    return Check("response cache", OK, f"{cache}, writable, {size / 1e6:.1f} MB")


def endpoint(base_url: str | None) -> tuple[str, str, dict[str, str]] | None:
    """(description, models URL, headers) of the endpoint runs would use, or None."""
    if base_url:
        key = os.environ.get("OPENAI_API_KEY")
        return f"--base-url {base_url}", base_url.rstrip("/") + "/models", {"Authorization": f"Bearer {key}"} if key else {}
    azure, azure_key = os.environ.get("AZURE_OPENAI_ENDPOINT"), os.environ.get("AZURE_OPENAI_API_KEY")
    if azure and azure_key:
        version = os.environ.get("OPENAI_API_VERSION", "2024-10-21")
        return f"Azure {azure}", f"{azure.rstrip('/')}/openai/models?api-version={version}", {"api-key": azure_key}
    if os.environ.get("OPENAI_API_KEY"):
        return "OpenAI", "https://api.openai.com/v1/models", {"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}"}
    return None


def check_keys(base_url: str | None) -> Check:
    azure = [name for name in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY") if os.environ.get(name)]
    if len(azure) == 1:
        other = ({"AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY"} - set(azure)).pop()
        return Check("keys", WARN, f"{azure[0]} is set but {other} is not", f"export {other} too (or unset {azure[0]})")
    chosen = endpoint(base_url)
    if chosen is None:
        return Check("keys", OK, "no OPENAI_API_KEY, Azure variables or --base-url: runs use the embedded model",
                     "export OPENAI_API_KEY=... or pass --base-url URL for a real model")
    return Check("keys", OK, f"runs without --backend use {chosen[0]}")


def check_online(base_url: str | None, timeout: float) -> Check:
    chosen = endpoint(base_url)
    if chosen is None:
        return Check("endpoint", OK, "no endpoint configured: nothing to reach")
    import httpx

    from .llm.openai_backend import unreachable_reason

    what, url, headers = chosen
    try:
        response = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        reason = {"resolve": "the host name does not resolve", "refused": "connection refused (nothing listens)",
                  "unreachable": "no route to the host"}.get(unreachable_reason(exc) or "", " ".join(str(exc).split())[:200])
        return Check("endpoint", FAIL, f"{what}: {reason}", "check the URL and that the server is running")
    if response.status_code in (401, 403):
        return Check("endpoint", FAIL, f"{what} refused the key (HTTP {response.status_code})", "check the API key")
    if response.status_code >= 400:
        return Check("endpoint", WARN, f"{what} answered HTTP {response.status_code} to GET /models",
                     "the server runs; it may not list models")
    return Check("endpoint", OK, f"{what} answers (HTTP {response.status_code})")


def check_llamacpp_guard() -> Check:
    if installed_version("llama_cpp_python") is None:
        return Check("llama.cpp", WARN, "llama-cpp-python not installed (llamacpp backend)", "pip install -e '.[llamacpp]'")
    from .llm.llamacpp import amx_unusable

    if amx_unusable():
        return Check("llama.cpp", WARN, "this CPU advertises AMX but the kernel does not enable it: llama.cpp's own "
                     "server would crash on the first matrix product",
                     "use llamacpp:<gguf> or `python -m rafa_core.llm.llamacpp --model ...` (they load without AMX)")
    return Check("llama.cpp", OK, "CPU-feature guard: AMX usable or absent, no workaround needed")


# -- the command ------------------------------------------------------------------------------
def run_checks(base_url: str | None, cache: Path, online: bool, timeout: float) -> list[Check]:
    steps: list[tuple[str, Callable[[], Check | Iterator[Check]]]] = [
        ("python", check_python), ("dependencies", check_dependencies), ("torch", check_torch),
        ("embedded model", check_embedded_model), ("game24 data", check_game24_data),
        ("alfworld engine", check_alfworld_engine), ("ALFWORLD_DATA", check_alfworld_data),
        ("response cache", lambda: check_cache(cache)), ("keys", lambda: check_keys(base_url)),
        ("endpoint", (lambda: check_online(base_url, timeout)) if online
         else (lambda: Check("endpoint", OK, "not checked", "--online asks it for its model list"))),
        ("llama.cpp", check_llamacpp_guard),
    ]
    checks: list[Check] = []
    for name, step in steps:
        try:
            result = step()
            checks += [result] if isinstance(result, Check) else list(result)
        except Exception as exc:  # a doctor reports what it cannot check; it does not crash
            checks.append(Check(name, WARN, f"could not check: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m rafa_core doctor", description="Check that this machine is ready for RAFA.")
    parser.add_argument("--online", action="store_true", help="also ask the configured endpoint for its model list")
    parser.add_argument("--base-url", dest="base_url", default=os.environ.get("OPENAI_BASE_URL"),
                        help="an OpenAI-compatible server to check (default $OPENAI_BASE_URL)")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help=f"the response cache to check (default {default_cache_dir()}; $RAFA_CACHE_DIR)")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="S", help="seconds to wait for the endpoint")
    args = parser.parse_args(argv)
    checks = run_checks(args.base_url, args.cache or default_cache_dir(), args.online, args.timeout)
    for check in checks:
        print(check.line(), flush=True)
    failed = sum(c.status == FAIL for c in checks)
    warned = sum(c.status == WARN for c in checks)
    print(f"{len(checks)} checks: {failed} FAIL, {warned} WARN")
    return 1 if failed else 0
