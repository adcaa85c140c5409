"""Frame reading rules (gray / RGBA / 16-bit / corrupt) and atomic writes."""
import cv2
import numpy as np
import pytest

from edvr_lib.data.io import png_header, read_image, read_image_uint8, write_png
from edvr_lib.utils import EDVRError


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)


def test_rgb_round_trip(tmp_path, rgb):
    path = write_png(tmp_path / "a" / "00000000.png", rgb)
    img = read_image(path)
    assert img.dtype == np.float32 and img.shape == (12, 10, 3)
    np.testing.assert_array_equal(read_image_uint8(path), rgb)
    # stored BGR on disk like every OpenCV PNG: channel 0 read back by cv2 is our blue
    np.testing.assert_array_equal(cv2.imread(str(path))[:, :, 0], rgb[:, :, 2])
    assert png_header(path) == {"width": 10, "height": 12, "bit_depth": 8, "channels": 3}


def test_grayscale_is_copied_to_three_channels(tmp_path, rgb):
    gray = rgb[:, :, 0]
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    img = read_image(tmp_path / "g.png")
    assert img.shape == (12, 10, 3)
    for c in range(3):
        np.testing.assert_allclose(img[:, :, c], gray / 255.0, atol=1e-7)


def test_opaque_rgba_drops_alpha_and_transparent_is_refused(tmp_path, rgb):
    bgra = np.concatenate([rgb[:, :, ::-1], np.full((12, 10, 1), 255, np.uint8)], axis=2)
    cv2.imwrite(str(tmp_path / "opaque.png"), bgra)
    np.testing.assert_array_equal(read_image_uint8(tmp_path / "opaque.png"), rgb)
    bgra[3, 4, 3] = 128
    cv2.imwrite(str(tmp_path / "clear.png"), bgra)
    with pytest.raises(EDVRError, match=r"clear\.png.*transparent"):
        read_image(tmp_path / "clear.png")


def test_16_bit_keeps_its_precision(tmp_path):
    rng = np.random.default_rng(1)
    img16 = rng.integers(0, 65536, (6, 5, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), img16)
    img = read_image(tmp_path / "deep.png")
    np.testing.assert_allclose(img, img16[:, :, ::-1] / 65535.0, atol=1e-7)
    assert png_header(tmp_path / "deep.png")["bit_depth"] == 16


def test_corrupt_truncated_empty_and_missing_files(tmp_path, rgb):
    good = write_png(tmp_path / "good.png", rgb).read_bytes()
    (tmp_path / "garbage.png").write_bytes(b"this is not a png at all")
    (tmp_path / "trunc.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    for name in ("garbage.png", "trunc.png", "empty.png", "missing.png"):
        with pytest.raises(EDVRError, match=name.replace(".", r"\.")) as err:
            read_image(tmp_path / name)
        assert "Fix" in str(err.value) or "Check" in str(err.value)
    with pytest.raises(EDVRError, match="garbage"):
        png_header(tmp_path / "garbage.png")


def test_write_is_atomic(tmp_path, rgb):
    dest = write_png(tmp_path / "f.png", rgb)
    before = dest.read_bytes()
    with pytest.raises(EDVRError):
        write_png(dest, rgb.astype(np.int32))  # refused before anything is written
    assert dest.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]  # no temp files left
