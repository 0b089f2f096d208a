"""Readers on the real files in imaging/dicom_nifti_io: geometry, HU, SEG/NRRD agreement, clear errors."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest

from smartcare.imaging.io import (
    ImageReadError,
    read_dicom,
    read_dicom_seg,
    read_dicom_series,
    read_image,
    read_nifti,
    read_npz,
    read_nrrd,
    read_png,
)


@pytest.fixture(scope="module")
def io_dir(shared_data):
    return shared_data / "imaging" / "dicom_nifti_io"


@pytest.fixture(scope="module")
def ct(io_dir):
    return read_dicom_series(io_dir / "ct_3slice")


def test_ct_series_geometry_and_hounsfield_units(ct, io_dir):
    assert ct.array.shape == (3, 512, 512)
    np.testing.assert_allclose(ct.spacing, (0.810547, 0.810547, 1.0), atol=1e-5)  # z from positions, not 1.25
    np.testing.assert_allclose(ct.origin, (-235.2, -226.8, -128.69), atol=1e-4)  # lowest slice first
    np.testing.assert_allclose(ct.direction, np.eye(3))
    raw = pydicom.dcmread(io_dir / "ct_3slice" / "01.dcm").pixel_array  # z = -126.69 -> last slice
    np.testing.assert_array_equal(ct.array[2], raw.astype(np.float32) - 1024.0)


def test_ct_seg_and_nrrd_agree_voxel_for_voxel(ct, io_dir):
    seg = read_dicom_seg(io_dir / "ct_3slice_liver_seg.dcm")
    on_ct = read_dicom_seg(io_dir / "ct_3slice_liver_seg.dcm", reference=ct)
    label = read_nrrd(io_dir / "ct_3slice_liver_seg.nrrd")
    assert seg.meta["segments"] == [{"number": 1, "label": "Liver"}]
    assert seg.array.shape == (1, 3, 512, 512) and label.array.shape == (3, 512, 512)
    assert seg.same_grid(ct) and label.same_grid(ct) and on_ct.same_grid(ct)
    np.testing.assert_array_equal(seg.array[0], label.array)
    np.testing.assert_array_equal(on_ct.array[0], label.array)
    assert int(label.array.sum()) == 107098
    assert np.median(ct.array[label.array.astype(bool)]) > 0  # liver is soft tissue, not air


def test_single_and_multiframe_dicom(io_dir):
    ct = read_dicom(io_dir / "CT_small.dcm")
    assert ct.array.shape == (1, 128, 128) and ct.array.dtype == np.float32
    assert ct.array.min() >= -1024
    mr = read_image(io_dir / "emri_small.dcm")
    assert mr.array.shape == (10, 64, 64)
    assert "unknown" in mr.meta["geometry"]


def test_nifti_3d_4d_and_roundtrip(io_dir, ct, tmp_path):
    import nibabel as nib

    anat = read_nifti(io_dir / "anatomical.nii")
    assert anat.array.shape == (25, 41, 33) and anat.spacing == (2.0, 2.0, 2.0)
    np.testing.assert_allclose(anat.origin, (-32.0, 40.0, -16.0))  # RAS (32, -40, -16) in LPS
    fmri = read_image(io_dir / "example4d.nii.gz")
    assert fmri.array.shape == (2, 24, 96, 128) and fmri.meta["time_step"] == 2000.0
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ct.affine
    nib.save(nib.Nifti1Image(np.transpose(ct.array, (2, 1, 0)), ras), tmp_path / "ct.nii.gz")
    back = read_image(tmp_path / "ct.nii.gz")
    assert back.same_grid(ct)
    np.testing.assert_array_equal(back.array, ct.array)


def test_png_and_npz(tmp_path):
    from PIL import Image

    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(tmp_path / "g.png")
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "c.png")
    assert read_png(tmp_path / "g.png").array.shape == (1, 8, 8)
    assert read_png(tmp_path / "c.png").array.shape == (3, 1, 4, 6)
    np.savez(tmp_path / "a.npz", train_images=np.zeros((2, 3, 3)), val_images=np.ones((1, 3, 3)))
    assert read_npz(tmp_path / "a.npz", "val_images").shape == (1, 3, 3)
    with pytest.raises(ImageReadError, match="choose one with --key"):
        read_npz(tmp_path / "a.npz")


@pytest.mark.parametrize("cut, message", [(20000, "corrupt or truncated"), (50, "not a DICOM file")])
def test_truncated_dicom_is_a_clear_error(io_dir, tmp_path, cut, message):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes((io_dir / "CT_small.dcm").read_bytes()[:cut])
    with pytest.raises(ImageReadError, match=message):
        read_image(bad)


def test_truncated_nifti_and_nrrd_are_clear_errors(io_dir, tmp_path):
    for name in ("anatomical.nii", "ct_3slice_liver_seg.nrrd"):
        bad = tmp_path / name
        bad.write_bytes((io_dir / name).read_bytes()[:3000])
        with pytest.raises(ImageReadError, match="corrupt or truncated"):
            read_image(bad)


def _series_copy(io_dir, tmp_path, edit=None):
    folder = tmp_path / "series"
    shutil.copytree(io_dir / "ct_3slice", folder)
    if edit:
        ds = pydicom.dcmread(folder / "03.dcm")
        edit(ds)
        ds.save_as(folder / "03.dcm")
    return folder


def test_mixed_geometry_series_is_a_clear_error(io_dir, tmp_path):
    def gap(ds):
        ds.ImagePositionPatient = [-235.2, -226.8, -130.69]  # 2 mm step instead of 1 mm

    with pytest.raises(ImageReadError, match="mixed geometry, slice spacing is uneven"):
        read_dicom_series(_series_copy(io_dir, tmp_path / "a", gap))

    def spacing(ds):
        ds.PixelSpacing = [0.7, 0.7]

    with pytest.raises(ImageReadError, match="mixed geometry.*Pixel Spacing"):
        read_dicom_series(_series_copy(io_dir, tmp_path / "b", spacing))

    def other_series(ds):
        ds.SeriesInstanceUID = "1.2.3.4"

    with pytest.raises(ImageReadError, match="2 different series"):
        read_dicom_series(_series_copy(io_dir, tmp_path / "c", other_series))


def test_seg_needs_matching_reference(io_dir):
    mr = read_dicom(io_dir / "MR_small.dcm")
    with pytest.raises(ImageReadError, match="reference"):
        read_dicom_seg(io_dir / "ct_3slice_liver_seg.dcm", reference=mr)


def _patched(src, dst, offset, data):
    raw = bytearray(src.read_bytes())
    raw[offset:offset + len(data)] = data
    dst.write_bytes(bytes(raw))
    return dst


@pytest.mark.parametrize("offset, data, message", [
    (70, b"\x7f\x7f", "not recognized"),  # datatype code (anatomical.nii is big-endian)
    (42, b"\x7f\xff\x7f\xff", "header declares 32767x32767x25 voxels"),  # dim[1], dim[2]
    (108, b"\x7f\x7f\x7f\x7f", "impossible"),  # vox_offset
])
def test_corrupt_nifti_header_is_a_clear_error(io_dir, tmp_path, offset, data, message):
    bad = _patched(io_dir / "anatomical.nii", tmp_path / "bad.nii", offset, data)
    with pytest.raises(ImageReadError, match=f"bad.nii is not a readable NIfTI file.*{message}") as err:
        read_image(bad)
    assert "\n" not in str(err.value)


def test_non_npz_non_image_and_folders_are_clear_errors(tmp_path):
    (tmp_path / "fake.npz").write_text("x")
    with pytest.raises(ImageReadError, match="fake.npz is not a readable NPZ file.*not a zip archive"):
        read_image(tmp_path / "fake.npz")
    (tmp_path / "fake.png").write_text("hello")
    with pytest.raises(ImageReadError, match="fake.png is not a readable image file") as err:
        read_image(tmp_path / "fake.png")
    assert str(tmp_path) not in str(err.value)  # no server paths in messages
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageReadError, match="the folder is empty"):
        read_image(tmp_path / "empty")
    (tmp_path / "pngs").mkdir()
    (tmp_path / "pngs" / "a.png").write_text("x")
    with pytest.raises(ImageReadError, match="holds no DICOM files"):
        read_image(tmp_path / "pngs")


def test_header_only_dicom_says_truncated(io_dir, tmp_path):
    bad = tmp_path / "cut.dcm"
    bad.write_bytes((io_dir / "CT_small.dcm").read_bytes()[:3000])  # cut inside the header
    with pytest.raises(ImageReadError, match="without pixel data: it is truncated"):
        read_image(bad)


def test_format_and_npz_key_are_reported(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "g.tif")
    assert read_image(tmp_path / "g.tif").meta["format"] == "tiff"
    np.savez(tmp_path / "s.npz", test_images=np.zeros((2, 3, 3), np.uint8), test_labels=np.zeros(2))
    assert read_image(tmp_path / "s.npz").meta["key"] == "test_images"
