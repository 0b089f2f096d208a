"""Write a binary DICOM SEG (PS3.3 A.51) for a segmented DICOM image, with highdicom.

highdicom places SEG frames in the source's patient coordinate system. A multi-frame source without one
(no Frame of Reference UID, or no per-frame Plane Position, e.g. a multi-frame Secondary Capture or an
enhanced MR object whose functional groups carry no geometry) is refused by highdicom ("Only a single
frame is supported ..."). For such a source the SEG is written on a synthetic, documented geometry:

- a copy of the source dataset (the file is not touched) gets Plane Orientation (1, 0, 0, 0, 1, 0),
  Pixel Measures (the source's Pixel Spacing if any, else 1 x 1 mm) and Plane Position (0, 0, k) for
  frame k (0-based), i.e. frame index along +z at 1 mm, the same grid ``read_dicom`` returns for such a
  file ("geometry unknown"), so ``read_dicom_seg(seg, reference=read_dicom(source))`` lines up;
- when the source has no Frame of Reference UID a new one is generated for the SEG. It identifies no
  real patient space: the SEG's frames are tied to the source's frames by the per-frame Derivation Image
  references (Referenced Frame Number k + 1), which highdicom writes from the source;
- every frame is written (empty ones too), so the frame count and order equal the source's;
- the SEG's Content Description says the geometry was synthesised.

Other tools do similarly when no geometry exists: the SEG stays pixel-aligned with the source frames and
the frame-to-frame references are authoritative.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from smartcare.core.errors import SmartcareError

SYNTHETIC_NOTE = "synthetic geometry: frame k at z = k mm, no patient position"  # LO, <= 64 chars


def needs_synthetic_geometry(ds) -> bool:
    """True for a multi-frame image that highdicom cannot place: no Frame of Reference or no plane positions."""
    from highdicom.spatial import get_image_coordinate_system

    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    return frames > 1 and get_image_coordinate_system(ds) is None


def with_synthetic_geometry(ds):
    """A copy of the multi-frame dataset ``ds`` with frame-index plane geometry (see the module docstring)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import generate_uid

    out = copy.deepcopy(ds)
    frames = int(ds.NumberOfFrames)
    if "FrameOfReferenceUID" not in out:
        out.FrameOfReferenceUID = generate_uid()
        out.PositionReferenceIndicator = ""
    shared = out.SharedFunctionalGroupsSequence[0] if out.get("SharedFunctionalGroupsSequence") else Dataset()
    spacing = ds.get("PixelSpacing", [1.0, 1.0])
    if "PixelMeasuresSequence" in shared and "PixelSpacing" in shared.PixelMeasuresSequence[0]:
        spacing = shared.PixelMeasuresSequence[0].PixelSpacing
    spacing = [float(v) for v in spacing]
    orient, measures = Dataset(), Dataset()
    orient.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    measures.PixelSpacing = spacing
    measures.SliceThickness = 1.0
    measures.SpacingBetweenSlices = 1.0
    shared.PlaneOrientationSequence = Sequence([orient])
    shared.PixelMeasuresSequence = Sequence([measures])
    out.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = list(out.get("PerFrameFunctionalGroupsSequence") or [Dataset() for _ in range(frames)])
    if len(per_frame) != frames:
        raise SmartcareError(f"source has {frames} frames but {len(per_frame)} per-frame functional groups")
    for k, groups in enumerate(per_frame):
        pos = Dataset()
        pos.ImagePositionPatient = [0.0, 0.0, float(k)]
        groups.PlanePositionSequence = Sequence([pos])
    out.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    return out


def source_frame_order(ds) -> np.ndarray | None:
    """For a multi-frame image with plane positions: the source frame index of each slice in the order
    ``read_dicom`` returns them (sorted along the slice normal, stable), else None (file order)."""
    from smartcare.imaging.dicom import _plane

    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not per_frame or len(per_frame) < 2:
        return None
    planes = [_plane(ds, groups) for groups in per_frame]
    if any(pos is None or iop is None for pos, iop, _ in planes):
        return None
    normal = np.cross(planes[0][1][:3], planes[0][1][3:])
    return np.argsort([pos @ normal for pos, _, _ in planes], kind="stable")


def write_dicom_seg(source: Path, masks: np.ndarray, card: dict[str, Any], path: Path,
                    label: str = "vessels") -> Path:
    """Binary DICOM SEG of ``masks`` (frames, H, W), one segment, referencing the source image.

    ``masks`` are in the order ``read_dicom`` gives the frames (sorted along the normal when the file has
    plane positions); they are put back in the file's frame order for highdicom.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    ds = pydicom.dcmread(str(source))
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames != len(masks):
        raise SmartcareError(f"{source.name}: {len(masks)} masks for {frames} frames")
    if masks.shape[1:] != (ds.Rows, ds.Columns):
        raise SmartcareError(f"{source.name}: masks are {masks.shape[1:]}, the image is {ds.Rows}x{ds.Columns}")
    synthetic = needs_synthetic_geometry(ds)
    src = with_synthetic_geometry(ds) if synthetic else ds
    order = None if synthetic else source_frame_order(ds)
    if order is not None:
        in_file_order = np.empty_like(masks)
        in_file_order[order] = masks
        masks = in_file_order
    algo = hd.AlgorithmIdentificationSequence(name=str(card.get("name", "smartcare")),
                                              version=str(card.get("smartcare_version", "0")),
                                              family=codes.DCM.ArtificialIntelligence)
    desc = hd.seg.SegmentDescription(segment_number=1, segment_label=label,
                                     segmented_property_category=codes.SCT.Tissue,
                                     segmented_property_type=codes.SCT.BloodVessel,
                                     algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                                     algorithm_identification=algo)
    try:
        seg = hd.seg.Segmentation(source_images=[src], pixel_array=masks.astype(np.uint8),
                                  segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                                  segment_descriptions=[desc], series_instance_uid=hd.UID(), series_number=900,
                                  sop_instance_uid=hd.UID(), instance_number=1, manufacturer="smartcare",
                                  manufacturer_model_name=str(card.get("name", "smartcare")),
                                  software_versions=str(card.get("smartcare_version", "0")),
                                  device_serial_number="0", omit_empty_frames=not synthetic,
                                  content_description=SYNTHETIC_NOTE if synthetic else None)
    except (ValueError, TypeError, AttributeError) as err:
        raise SmartcareError(f"{source.name}: cannot write a DICOM SEG for this image: {err}") from err
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    seg.save_as(str(tmp))
    tmp.replace(path)
    return path
