from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from darkyolo.data import images as images_module
from darkyolo.data.images import (
    collect_sources,
    decode,
    iter_video_frames,
    read_image,
    video_info,
)
from darkyolo.errors import DataError

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "samples"


def write_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def test_reads_rgb_in_the_right_channel_order(tmp_path):
    red = np.zeros((7, 9, 3), np.uint8)
    red[..., 0] = 200
    image = read_image(write_png(tmp_path / "red.png", red))
    assert image.shape == (7, 9, 3) and image.dtype == np.uint8
    assert image[..., 0].min() == 200 and image[..., 1:].max() == 0


def test_grey_and_alpha_become_rgb(tmp_path):
    grey = read_image(write_png(tmp_path / "g.png", np.full((5, 6), 90, np.uint8)))
    assert grey.shape == (5, 6, 3) and np.all(grey == 90)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 2] = 255
    rgba[..., 3] = 128
    out = read_image(write_png(tmp_path / "a.png", rgba))
    assert out.shape == (4, 4, 3) and np.all(out[..., 2] == 255)


def test_gif_decodes_through_the_fallback(tmp_path):
    Image.fromarray(np.full((8, 8, 3), 255, np.uint8)).save(tmp_path / "w.gif")
    out = read_image(tmp_path / "w.gif")
    assert out.shape == (8, 8, 3) and out.min() == 255


def test_oversized_image_is_refused_before_decoding(tmp_path, monkeypatch):
    path = write_png(tmp_path / "big.png", np.zeros((40, 50, 3), np.uint8))

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded despite the pixel limit")

    monkeypatch.setattr(images_module.cv2, "imdecode", no_decode)
    with pytest.raises(DataError, match="over the limit") as info:
        read_image(path, max_pixels=1999)
    assert info.value.file == str(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"this is not an image", "not a recognised image")],
)
def test_unreadable_files_raise_data_error(tmp_path, content, message):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_image(path)


def test_missing_and_truncated_files(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_image(tmp_path / "nope.jpg")
    ok, encoded = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (64, 64, 3)))
    assert ok
    path = tmp_path / "cut.png"
    path.write_bytes(
        encoded.tobytes()[:200]
    )  # cut inside the pixel data: decoded as far as it goes
    decoded = decode(path.read_bytes(), str(path))
    assert decoded.repaired and decoded.repaired.startswith("truncated PNG")
    assert read_image(path).shape == (64, 64, 3)
    path.write_bytes(encoded.tobytes()[:20])  # cut inside the header: nothing to decode
    with pytest.raises(DataError):
        read_image(path)


def test_real_samples_read():
    if not SAMPLES.is_dir():
        pytest.skip("shared samples not available")
    dog = read_image(SAMPLES / "dog.jpg")
    assert dog.shape == (576, 768, 3)


def make_video(path: Path, frames: int = 5, size: tuple[int, int] = (48, 32)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), 0, np.uint8)
        frame[..., 2] = 40 * i  # red rises with the frame index (BGR for the writer)
        writer.write(frame)
    writer.release()
    return path


def test_video_frames_in_rgb_with_stride(tmp_path):
    path = make_video(tmp_path / "clip.avi")
    info = video_info(path)
    assert (info.width, info.height) == (48, 32) and info.frames == 5
    frames = list(iter_video_frames(path, stride=2))
    assert [i for i, _ in frames] == [0, 2, 4]
    reds = [int(f[..., 0].mean()) for _, f in frames]
    assert reds[0] < reds[1] < reds[2] and frames[0][1].shape == (32, 48, 3)
    with pytest.raises(DataError, match="over the limit"):
        list(iter_video_frames(path, max_pixels=100))


def test_bad_video_raises(tmp_path):
    path = tmp_path / "bad.mp4"
    path.write_bytes(b"nothing")
    with pytest.raises(DataError):
        video_info(path)
    with pytest.raises(DataError):
        list(iter_video_frames(tmp_path / "missing.mp4"))


def test_collect_sources_expands_folders_globs_and_lists(tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    for name in ("b.jpg", "a.png", "notes.md"):
        (folder / name).write_bytes(b"x")
    video = make_video(tmp_path / "clip.avi", frames=1)
    listing = tmp_path / "list.txt"
    listing.write_text("pics/a.png\n\n# comment\n" + str(folder / "b.jpg") + "\n")
    found = collect_sources(
        [folder, str(tmp_path / "pics" / "*.jpg"), listing, video, tmp_path / "gone.jpg"]
    )
    assert [p.name for p in found.images] == ["a.png", "b.jpg", "b.jpg", "a.png", "b.jpg"]
    assert found.videos == [video]
    assert len(found.missing) == 1 and "gone.jpg" in found.missing[0]
    assert len(found) == 6


def test_empty_folder_and_unmatched_glob_are_reported(tmp_path):
    (tmp_path / "empty").mkdir()
    found = collect_sources([tmp_path / "empty", str(tmp_path / "*.jpg")])
    assert len(found) == 0 and len(found.missing) == 2
