"""Hostile files are refused before they can do harm.

* a checkpoint whose pickle would run ``os.system`` (zip and legacy formats): refused, never run;
* XML with entity expansion (billion laughs) or external entities: refused by the parser;
* a picture whose header claims more pixels than the limit: refused before any decoding;
* a COCO ``file_name`` or a ``.data`` image-list entry that leaves the dataset folder: refused.
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from darkyolo.darknet.cfg import parse_cfg
from darkyolo.data import images as images_module
from darkyolo.data.formats.coco import read_coco
from darkyolo.data.formats.voc import parse_voc_xml
from darkyolo.data.images import MAX_PIXELS, decode_image, read_image
from darkyolo.data.layouts import load_dataset
from darkyolo.errors import DataError, WeightsError
from darkyolo.models.darknet import Darknet
from darkyolo.models.io import load_weights, read_torch_file

TINY_CFG = """[net]
width=32
height=32

[convolutional]
filters=18
size=1
activation=linear

[yolo]
mask=0,1,2
anchors=4,5, 8,9, 16,20
classes=1
num=3
"""


# ----------------------------------------------------------------------------------------------
# Pickles that run code
# ----------------------------------------------------------------------------------------------


class _Planted:
    """Unpickling this calls ``os.system(command)``: what a hostile checkpoint would do."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _plant(path: Path, marker: Path, legacy: bool = False) -> Path:
    model = Darknet(parse_cfg(TINY_CFG, "tiny.cfg"))
    payload = {"model": model.state_dict(), "hook": _Planted(f"echo pwned > '{marker}'")}
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_planted_pickle_is_refused_and_never_runs(tmp_path, legacy):
    marker = tmp_path / "marker"
    path = _plant(tmp_path / "evil.pt", marker, legacy)
    model = Darknet(parse_cfg(TINY_CFG, "tiny.cfg"))
    with pytest.raises(WeightsError) as info:
        load_weights(model, path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert "weights_only=False" not in message  # never advise the unsafe load
    assert not marker.exists(), "the planted pickle ran"
    if not legacy:  # a legacy pickle is not a zip: it is read (and refused) as .weights bytes
        assert "refused" in message and "system" in message
    with pytest.raises(WeightsError):
        read_torch_file(path)
    assert not marker.exists()


def test_trainer_checkpoint_loader_refuses_planted_pickle(tmp_path):
    from darkyolo.models.io import read_checkpoint

    marker = tmp_path / "marker"
    path = _plant(tmp_path / "last.pt", marker)
    with pytest.raises(WeightsError):
        read_checkpoint(path)
    assert not marker.exists(), "the planted pickle ran"


@pytest.mark.parametrize("command", ["detect", "train"])
def test_planted_pickle_through_the_command_line(tmp_path, capsys, command):
    """``detect --weights evil.pt`` and ``train --resume evil.pt``: exit 2, nothing runs."""
    pytest.importorskip(f"darkyolo.commands.{command}")
    from darkyolo.cli import main

    marker = tmp_path / "marker"
    path = _plant(tmp_path / "evil.pt", marker)
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY_CFG)
    picture = tmp_path / "a.png"
    Image.new("RGB", (32, 32)).save(picture)
    if command == "detect":
        argv = ["detect", str(picture), "--model", str(cfg), "--weights", str(path)]
    else:
        argv = ["train", "--resume", str(path), "--project", str(tmp_path / "runs")]
    assert main(argv) == 2
    assert str(path) in capsys.readouterr().err
    assert not marker.exists(), "the planted pickle ran"


def test_the_planted_pickle_is_armed(tmp_path):
    """Control: an unsafe load of the same file does run the command (so the refusal matters)."""
    marker = tmp_path / "marker"
    path = _plant(tmp_path / "evil.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.read_text().strip() == "pwned"


# ----------------------------------------------------------------------------------------------
# XML
# ----------------------------------------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<annotation><filename>a.jpg</filename><object><name>&lol9;</name>
<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>
"""


def test_billion_laughs_is_refused(tmp_path):
    path = tmp_path / "lolz.xml"
    path.write_text(BILLION_LAUGHS)
    with pytest.raises(DataError, match=r"refused unsafe XML \(EntitiesForbidden\)") as info:
        parse_voc_xml(path)
    assert info.value.file == str(path)


def test_external_entity_is_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("RBC")
    path = tmp_path / "xxe.xml"
    path.write_text(
        f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        "<annotation><object><name>&xxe;</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
        "<xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>"
    )
    with pytest.raises(DataError, match="refused unsafe XML") as info:
        parse_voc_xml(path)
    assert info.value.file == str(path)


def test_convert_refuses_a_voc_folder_with_a_billion_laughs_file(tmp_path, capsys):
    from darkyolo.cli import main

    (tmp_path / "voc" / "Annotations").mkdir(parents=True)
    (tmp_path / "voc" / "JPEGImages").mkdir()
    (tmp_path / "voc" / "Annotations" / "a.xml").write_text(BILLION_LAUGHS)
    status = main(["convert", str(tmp_path / "voc"), str(tmp_path / "out"), "--from", "voc"])
    err = capsys.readouterr().err
    assert status == 2 and "a.xml: refused unsafe XML" in err


# ----------------------------------------------------------------------------------------------
# Decompression bombs
# ----------------------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` RGB pixels, whose data is a few hundred bytes
    of zlib that would inflate to (part of) the rows: a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 << 20), 9)  # 1 MiB of zero rows in ~1 KiB
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", rows)
        + _chunk(b"IEND", b"")
    )


def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any pixel decoding starts (OpenCV or Pillow's load)."""

    def refuse(*args, **kwargs):
        raise AssertionError("pixels were decoded despite the pixel limit")

    monkeypatch.setattr(images_module.cv2, "imdecode", refuse)
    monkeypatch.setattr(Image.Image, "load", refuse)


@pytest.mark.parametrize(
    "size, reason",
    [((50_000, 50_000), "decompression bomb"), ((10_000, 10_001), "over the limit")],
    ids=["pillow-limit", "darkyolo-limit"],
)
def test_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch, size, reason):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb(*size))
    no_decoding(monkeypatch)
    assert path.stat().st_size < 4096
    assert size[0] * size[1] > MAX_PIXELS
    with pytest.raises(DataError, match=reason) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        read_image(path)
    assert info.value.file == str(path)
    with pytest.raises(DataError, match=reason), warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        decode_image(path.read_bytes(), "bomb.png")


def test_pixel_limit_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "small.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(path)
    no_decoding(monkeypatch)
    with pytest.raises(DataError, match="1,600 pixels is over the limit of 1,000"):
        read_image(path, max_pixels=1000)


def test_training_and_detection_read_through_the_guarded_reader():
    """The training dataset decodes pictures only through ``read_image``, the predictor through
    ``decode`` (which ``read_image`` calls): the pixel limit is checked before either decodes."""
    assert importlib.import_module("darkyolo.data.dataset").read_image is read_image
    from darkyolo.data.images import decode

    assert importlib.import_module("darkyolo.inference.predictor").decode is decode


# ----------------------------------------------------------------------------------------------
# Paths that leave the dataset folder
# ----------------------------------------------------------------------------------------------


def _coco(tmp_path: Path, file_name: str) -> Path:
    data = {
        "images": [{"id": 5, "file_name": file_name, "width": 8, "height": 8}],
        "categories": [{"id": 1, "name": "x"}],
        "annotations": [],
    }
    path = tmp_path / "instances_x.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "/etc/passwd", "a/../../b.jpg", "C:\\x.jpg", "a\x00.jpg"]
)
def test_coco_file_name_escaping_the_images_folder_is_refused(tmp_path, name):
    path = _coco(tmp_path, name)
    with pytest.raises(
        DataError, match=r"image id 5 file_name .* escape the images folder"
    ) as info:
        read_coco(path, tmp_path / "images")
    assert info.value.file == str(path)


def test_coco_file_name_in_a_subfolder_is_fine(tmp_path):
    coco = read_coco(_coco(tmp_path, "train/./a.jpg"), tmp_path / "images")
    assert coco.records[0].image == tmp_path / "images" / "train" / "a.jpg"


def _dataset(root: Path, entries: list[str], list_name: str = "train.txt") -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(root / "images" / "a.png")
    (root / "x.names").write_text("x\n")
    (root / list_name).parent.mkdir(parents=True, exist_ok=True)
    (root / list_name).write_text("\n".join(entries) + "\n")
    (root / "x.data").write_text(f"classes=1\nnames=x.names\ntrain={list_name}\n")
    return root / "x.data"


@pytest.mark.parametrize("entry", ["../outside.png", "images/../../outside.png", "a\x00.png"])
def test_data_train_list_entry_escaping_the_dataset_is_refused(tmp_path, entry):
    Image.new("RGB", (8, 8)).save(tmp_path / "outside.png")
    data = _dataset(tmp_path / "ds", ["images/a.png", entry])
    with pytest.raises(DataError) as info:
        load_dataset(data)
    assert info.value.file == str(tmp_path / "ds" / "train.txt") and info.value.line == 2
    assert "escapes the dataset folder" in str(info.value) or "NUL" in str(info.value)


def test_data_train_list_inside_the_dataset_is_fine(tmp_path):
    """A list in a sub-folder may point up to the dataset root; absolute paths are taken as
    written (Darknet's own lists hold absolute paths)."""
    root = tmp_path / "ds"
    data = _dataset(root, ["../images/a.png", str(root / "images" / "a.png")], "lists/train.txt")
    spec = load_dataset(data)
    assert [p.resolve() for p in spec.train] == [(root / "images" / "a.png").resolve()] * 2
