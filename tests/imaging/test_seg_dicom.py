"""DICOM SEG for multi-frame sources without patient geometry: written, valid, and read back voxel for voxel."""

from __future__ import annotations

import hashlib

import numpy as np
import pydicom
import pytest
from PIL import Image

from smartcare.core.errors import SmartcareError
from smartcare.imaging.dicom import read_dicom, read_dicom_seg
from smartcare.imaging.seg_dicom import SYNTHETIC_NOTE, needs_synthetic_geometry, write_dicom_seg

CARD = {"name": "test-model", "smartcare_version": "0.1.0"}


@pytest.fixture(scope="module")
def emri(shared_data):
    """Real enhanced-MR multi-frame file (10 frames of 64x64) with a Frame of Reference but no plane positions."""
    return shared_data / "imaging/dicom_nifti_io/emri_small.dcm"


def multiframe_sc_without_frame_of_reference(shared_data, path, geometry: bool = False):
    """Multi-frame Grayscale Word Secondary Capture of the 3 real CT slices: no Frame of Reference, no geometry.

    With ``geometry`` the slices' real Frame of Reference, orientation, spacing and positions are put in
    functional groups, in file order (z descending, so ``read_dicom`` reverses them)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    slices = [pydicom.dcmread(p) for p in sorted((shared_data / "imaging/dicom_nifti_io/ct_3slice").glob("*.dcm"))]
    pixels = np.stack([s.pixel_array.astype(np.uint16) for s in slices])  # (3, 512, 512) stored values
    ref = slices[0]
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7.3"  # Multi-frame Grayscale Word SC
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID
    for kw in ("PatientID", "PatientName", "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber"):
        setattr(ds, kw, ref.get(kw, ""))
    ds.PatientName, ds.PatientBirthDate, ds.PatientSex = "Test^CT", "", ""
    ds.ReferringPhysicianName, ds.StudyID = "", "1"
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = generate_uid(), 7, 1
    ds.Modality, ds.ConversionType = "OT", "WSD"
    ds.Rows, ds.Columns = pixels.shape[1:]
    ds.NumberOfFrames = len(pixels)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime")
    ds.FrameTime = 1.0
    ds.PixelData = pixels.tobytes()
    if geometry:
        from pydicom.sequence import Sequence

        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = ref.FrameOfReferenceUID, ""
        shared, orient, measures = pydicom.Dataset(), pydicom.Dataset(), pydicom.Dataset()
        orient.ImageOrientationPatient = ref.ImageOrientationPatient
        measures.PixelSpacing, measures.SliceThickness = ref.PixelSpacing, ref.SliceThickness
        shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([orient]), Sequence([measures])
        ds.SharedFunctionalGroupsSequence = Sequence([shared])
        frames = []
        for sl in slices:
            group, pos = pydicom.Dataset(), pydicom.Dataset()
            pos.ImagePositionPatient = sl.ImagePositionPatient
            group.PlanePositionSequence = Sequence([pos])
            frames.append(group)
        ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.save_as(str(path), enforce_file_format=True)
    return path


def _assert_round_trip(src, masks, out):
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    write_dicom_seg(src, masks, CARD, out)
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before  # the source is never modified
    seg = pydicom.dcmread(out)
    assert seg.Modality == "SEG" and int(seg.NumberOfFrames) == len(masks)  # empty frames kept
    assert seg.ContentDescription == SYNTHETIC_NOTE
    for group in seg.PerFrameFunctionalGroupsSequence:  # frame at z = k references source frame k + 1
        z = float(group.PlanePositionSequence[0].ImagePositionPatient[2])
        ref = group.DerivationImageSequence[0].SourceImageSequence[0]
        assert int(ref.ReferencedFrameNumber) == int(z) + 1
        assert ref.ReferencedSOPInstanceUID == pydicom.dcmread(src, stop_before_pixels=True).SOPInstanceUID
    back = read_dicom_seg(out)  # placed by the SEG's own plane positions
    assert back.array.shape == (1, *masks.shape) and np.array_equal(back.array[0], masks.astype(np.uint8))
    on_source = read_dicom_seg(out, reference=read_dicom(src))  # the grid read_dicom gives the source
    assert np.array_equal(on_source.array[0], masks.astype(np.uint8))
    import highdicom as hd

    parsed = hd.seg.Segmentation.from_dataset(seg)  # highdicom parses what it wrote
    assert parsed.number_of_segments == 1
    return seg


def test_seg_for_enhanced_multiframe_without_plane_positions(tmp_path, emri):
    ds = pydicom.dcmread(emri)
    assert needs_synthetic_geometry(ds) and "FrameOfReferenceUID" in ds
    rng = np.random.default_rng(0)
    masks = rng.random((int(ds.NumberOfFrames), ds.Rows, ds.Columns)) > 0.7
    masks[0], masks[4] = False, False  # empty frames, first one included
    seg = _assert_round_trip(emri, masks, tmp_path / "emri_seg.dcm")
    assert seg.FrameOfReferenceUID == ds.FrameOfReferenceUID  # the source's own frame of reference is kept


def test_seg_for_multiframe_secondary_capture_without_frame_of_reference(tmp_path, shared_data):
    src = multiframe_sc_without_frame_of_reference(shared_data, tmp_path / "sc.dcm")
    ds = pydicom.dcmread(src)
    assert "FrameOfReferenceUID" not in ds and needs_synthetic_geometry(ds)
    hu = read_dicom(src).array  # stored values; a real-pixel-derived mask (brighter than soft tissue)
    masks = hu > 1100
    assert masks.any() and not masks.all()
    seg = _assert_round_trip(src, masks, tmp_path / "sc_seg.dcm")
    assert seg.FrameOfReferenceUID  # a new, synthetic one


def test_seg_of_a_multiframe_with_geometry_follows_the_slice_order(tmp_path, shared_data):
    src = multiframe_sc_without_frame_of_reference(shared_data, tmp_path / "geo.dcm", geometry=True)
    vol = read_dicom(src)  # sorted along the normal: the file's last frame comes first
    assert vol.meta["geometry"] == "patient (LPS)" and not needs_synthetic_geometry(pydicom.dcmread(src))
    masks = np.zeros(vol.spatial_shape, bool)
    for k in range(len(masks)):
        masks[k, 10 * k:10 * k + 30, 50:90] = True  # a different mask on each slice
    write_dicom_seg(src, masks, CARD, tmp_path / "geo_seg.dcm")
    back = read_dicom_seg(tmp_path / "geo_seg.dcm", reference=vol)
    assert np.array_equal(back.array[0], masks.astype(np.uint8))


def test_segment_command_writes_a_seg_for_a_multiframe_without_geometry(tmp_path, emri):
    from typer.testing import CliRunner

    from smartcare.imaging.cli import app
    from smartcare.imaging.segment_apply import segment_file

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["segment", "--input", str(emri), "--out", str(out), "--no-tta"])
    assert result.exit_code == 2 and "DICOM Modality MR" in result.output  # an MR is not a fundus photograph
    segment_file(emri, out, tta=False, allow_mismatch=True)  # the SEG path, run anyway
    back = read_dicom_seg(out / "emri_small_seg.dcm")
    pngs = np.stack([np.asarray(Image.open(out / f"emri_small_{k:03d}_mask.png")) > 0 for k in range(10)])
    assert np.array_equal(back.array[0] > 0, pngs)


def test_seg_refuses_masks_that_do_not_match_the_source(tmp_path, emri):
    with pytest.raises(SmartcareError, match="masks for 10 frames"):
        write_dicom_seg(emri, np.zeros((3, 64, 64), bool), CARD, tmp_path / "x.dcm")
    with pytest.raises(SmartcareError, match="masks are"):
        write_dicom_seg(emri, np.zeros((10, 32, 32), bool), CARD, tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()
