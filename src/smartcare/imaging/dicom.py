"""DICOM reading with pydicom: single- and multi-frame images, series stacked into volumes, and DICOM SEG.

Geometry follows DICOM PS3.3 C.7.6.2 (Image Plane module): Image Position/Orientation (Patient) in LPS,
Pixel Spacing = (row spacing, column spacing). Slices are ordered along the normal ``row x column`` and
the slice spacing comes from the positions, not from Slice Thickness. Stored values are mapped to
modality units (HU for CT) with Rescale Slope/Intercept (PS3.3 C.11.1). SEG follows PS3.3 C.8.20.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from smartcare.imaging.volume import ImageReadError, Volume

POSITION_TOL = 1e-3  # mm: positions closer than this are the same slice
SPACING_RTOL = 0.01  # relative tolerance on slice spacing, pixel spacing and orientation


def read_dataset(path: Path | str, stop_before_pixels: bool = False) -> Dataset:
    """pydicom ``dcmread`` with clear errors for non-DICOM, corrupt and truncated files."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as err:
        raise ImageReadError(f"{path.name} is not a DICOM file (no 'DICM' marker after the 128-byte preamble)"
                             ) from err
    except Exception as err:  # pydicom raises many types on damaged input (EOFError, struct.error, ...)
        raise ImageReadError(f"{path.name} is a corrupt or truncated DICOM file: {err}") from err
    if not stop_before_pixels and not any(t in ds for t in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        # pydicom stops silently at end of file, so a file cut inside its header also lands here
        raise ImageReadError(f"{path.name} is a DICOM file without pixel data: it is truncated, or it holds no "
                             f"image (SOP class {getattr(ds.get('SOPClassUID'), 'name', 'unknown')})")
    return ds


def pixels(ds: Dataset, name: str = "") -> np.ndarray:
    """Decoded stored values as (frames, rows, cols) or (frames, rows, cols, samples)."""
    try:
        arr = ds.pixel_array
    except Exception as err:
        raise ImageReadError(f"{name or 'DICOM'}: pixel data cannot be decoded, the file is corrupt or "
                             f"truncated ({err})") from err
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1))
    if frames == 1:
        arr = arr[None]
    if arr.shape[0] != frames or (samples > 1 and arr.ndim != 4):
        raise ImageReadError(f"{name}: pixel data shape {arr.shape} does not match {frames} frame(s) of "
                             f"{ds.Rows}x{ds.Columns}x{samples}")
    return arr


def _rescale(arr: np.ndarray, slope, intercept) -> np.ndarray:
    """Stored values -> modality units; float32 unless slope/intercept are absent."""
    if slope is None and intercept is None:
        return arr
    return arr.astype(np.float32) * np.float32(slope if slope is not None else 1.0) + np.float32(
        intercept if intercept is not None else 0.0)


def _plane(ds: Dataset, frame_groups: Dataset | None = None) -> tuple:
    """(position, orientation, pixel spacing) of a frame, from per-frame, shared, or top-level tags."""
    def find(seq_name: str, tag: str):
        for groups in (frame_groups, _shared(ds)):
            if groups is not None and seq_name in groups and tag in groups[seq_name][0]:
                return groups[seq_name][0][tag].value
        return ds.get(tag)

    pos = find("PlanePositionSequence", "ImagePositionPatient")
    iop = find("PlaneOrientationSequence", "ImageOrientationPatient")
    spacing = find("PixelMeasuresSequence", "PixelSpacing")
    to_arr = lambda v: None if v is None else np.asarray([float(x) for x in v])  # noqa: E731
    return to_arr(pos), to_arr(iop), to_arr(spacing)


def _shared(ds: Dataset) -> Dataset | None:
    seq = ds.get("SharedFunctionalGroupsSequence")
    return seq[0] if seq else None


def _frame_rescale(ds: Dataset, frame_groups: Dataset | None) -> tuple:
    for groups in (frame_groups, _shared(ds)):
        if groups is not None and "PixelValueTransformationSequence" in groups:
            item = groups.PixelValueTransformationSequence[0]
            return item.get("RescaleSlope"), item.get("RescaleIntercept")
    return ds.get("RescaleSlope"), ds.get("RescaleIntercept")


def stack_slices(slices: Sequence[np.ndarray], positions: Sequence[np.ndarray], iop: np.ndarray,
                 pixel_spacing: np.ndarray, what: str, thickness: float | None = None) -> Volume:
    """Order 2D slices along the normal and check that they form one regular grid.

    Raises ``ImageReadError`` for duplicate positions, uneven spacing (a missing slice), or slices that
    are not stacked straight along the normal.
    """
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    pos = np.stack(positions)  # (Z, 3)
    order = np.argsort(pos @ normal, kind="stable")
    pos = pos[order]
    along = pos @ normal  # (Z,)
    if len(pos) > 1:
        steps = np.diff(along)
        if np.any(steps < POSITION_TOL):
            raise ImageReadError(f"{what}: two slices share the position {pos[int(np.argmin(steps))].round(3).tolist()}"
                                 " (duplicate instances or more than one stack)")
        dz = float(np.median(steps))
        if np.any(np.abs(steps - dz) > SPACING_RTOL * dz + POSITION_TOL):
            raise ImageReadError(f"{what}: mixed geometry, slice spacing is uneven "
                                 f"({sorted(set(np.round(steps, 3).tolist()))} mm): a slice is missing or the "
                                 "series mixes stacks")
        inplane = (pos - pos[0]) - np.outer(along - along[0], normal)
        if np.abs(inplane).max() > max(POSITION_TOL, SPACING_RTOL * dz):
            raise ImageReadError(f"{what}: slices are not stacked along the normal of their planes "
                                 "(tilted gantry or mixed stacks); resample before stacking")
    else:
        dz = float(thickness) if thickness else 1.0
    array = np.stack([slices[i] for i in order])  # (Z, Y, X) or (Z, Y, X, S)
    if array.ndim == 4:
        array = np.moveaxis(array, -1, 0)  # (S, Z, Y, X)
    return Volume(array, (float(pixel_spacing[1]), float(pixel_spacing[0]), dz), tuple(float(v) for v in pos[0]),
                  np.stack([row, col, normal], axis=1), {})


def read_dicom(path: Path | str) -> Volume:
    """One DICOM image file (single- or multi-frame) -> ``Volume`` in modality units (HU for CT).

    Multi-frame files with per-frame Plane Position (enhanced CT/MR) are stacked with full geometry;
    without it, frames are stacked in file order with unknown slice geometry (``meta["geometry"]``).
    """
    path = Path(path)
    ds = read_dataset(path)
    if ds.get("Modality") == "SEG":
        return read_dicom_seg(path)
    arr = pixels(ds, path.name)  # (F, Y, X[, S])
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or [None] * len(arr)
    if len(per_frame) != len(arr):
        raise ImageReadError(f"{path.name}: {len(arr)} frames but {len(per_frame)} per-frame functional groups")
    frames, positions = [], []
    iop = spacing = None
    for i, groups in enumerate(per_frame):
        pos, iop_i, spacing_i = _plane(ds, groups)
        frames.append(_rescale(arr[i], *_frame_rescale(ds, groups)))
        positions.append(pos if groups is not None or len(arr) == 1 else None)
        iop, spacing = (iop_i if iop is None else iop), (spacing_i if spacing is None else spacing)
    meta = {"modality": str(ds.get("Modality", "")), "photometric": str(ds.get("PhotometricInterpretation", "")),
            "sop_class": getattr(ds.get("SOPClassUID"), "name", ""), "frames": len(arr), "source": str(path)}
    if iop is None or spacing is None or any(p is None for p in positions):
        array = np.stack(frames)
        if array.ndim == 4:
            array = np.moveaxis(array, -1, 0)  # (S, F, Y, X)
        sp = (float(spacing[1]), float(spacing[0]), 1.0) if spacing is not None else (1.0, 1.0, 1.0)
        return Volume(array, sp, meta={**meta, "geometry": "unknown (no plane position/orientation)"})
    vol = stack_slices(frames, positions, iop, spacing, path.name, thickness=ds.get("SliceThickness"))
    return Volume(vol.array, vol.spacing, vol.origin, vol.direction, {**meta, "geometry": "patient (LPS)"})


def _series_files(source: Path | str | Iterable[Path | str]) -> list[Path]:
    if isinstance(source, str | Path):
        source = Path(source)
        if not source.is_dir():
            raise ImageReadError(f"{source}: not a folder of DICOM files")
        files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    else:
        files = [Path(p) for p in source]
    if not files:
        raise ImageReadError(f"{source}: no files to read as a DICOM series")
    return files


def read_dicom_series(source: Path | str | Iterable[Path | str]) -> Volume:
    """A folder (or list) of single-frame DICOM slices of one series -> one ``Volume`` (Z, Y, X).

    Raises ``ImageReadError`` for a corrupt file, more than one series, or mixed geometry (different
    matrix size, pixel spacing or orientation, uneven or duplicate slice positions).
    """
    files = _series_files(source)
    datasets = [read_dataset(f) for f in files]
    what = f"series in {files[0].parent}" if len(files) > 1 else files[0].name
    uids = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if len(uids) > 1:
        raise ImageReadError(f"{what}: the files belong to {len(uids)} different series; read one series at a time")
    if len(datasets) == 1 or any(int(ds.get("NumberOfFrames", 1) or 1) > 1 for ds in datasets):
        if len(datasets) > 1:
            raise ImageReadError(f"{what}: multi-frame files cannot be stacked with other files")
        return read_dicom(files[0])
    ref = datasets[0]
    ref_iop = np.asarray(ref.ImageOrientationPatient, dtype=float)
    ref_spacing = np.asarray(ref.PixelSpacing, dtype=float)
    slices, positions = [], []
    for f, ds in zip(files, datasets, strict=True):
        for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            if tag not in ds:
                raise ImageReadError(f"{f.name}: no {tag}, so the slice cannot be placed in a volume")
        if (ds.Rows, ds.Columns) != (ref.Rows, ref.Columns):
            raise ImageReadError(f"{what}: mixed geometry, {f.name} is {ds.Rows}x{ds.Columns} but "
                                 f"{files[0].name} is {ref.Rows}x{ref.Columns}")
        if not np.allclose(np.asarray(ds.ImageOrientationPatient, dtype=float), ref_iop, atol=SPACING_RTOL):
            raise ImageReadError(f"{what}: mixed geometry, {f.name} has a different Image Orientation (Patient)")
        if not np.allclose(np.asarray(ds.PixelSpacing, dtype=float), ref_spacing, rtol=SPACING_RTOL):
            raise ImageReadError(f"{what}: mixed geometry, {f.name} has Pixel Spacing {list(ds.PixelSpacing)} "
                                 f"but {files[0].name} has {list(ref.PixelSpacing)}")
        slices.append(_rescale(pixels(ds, f.name)[0], ds.get("RescaleSlope"), ds.get("RescaleIntercept")))
        positions.append(np.asarray(ds.ImagePositionPatient, dtype=float))
    if len({s.dtype for s in slices}) > 1:
        slices = [s.astype(np.float32) for s in slices]
    vol = stack_slices(slices, positions, ref_iop, ref_spacing, what)
    meta = {"modality": str(ref.get("Modality", "")), "series_uid": uids.pop(), "slices": len(files),
            "photometric": str(ref.get("PhotometricInterpretation", "")), "geometry": "patient (LPS)"}
    return Volume(vol.array, vol.spacing, vol.origin, vol.direction, meta)


def read_dicom_seg(path: Path | str, reference: Volume | None = None) -> Volume:
    """A DICOM Segmentation -> ``Volume`` of shape (S, Z, Y, X), one channel per segment.

    BINARY segments come back as uint8 0/1, FRACTIONAL ones as float32 in [0, 1]. Frames are placed by
    their Plane Position: on ``reference``'s grid when given (e.g. the source CT series), otherwise on a
    grid spanned by the frames. ``meta["segments"]`` lists ``{"number", "label"}`` in channel order.
    """
    path = Path(path)
    ds = read_dataset(path)
    if ds.get("Modality") != "SEG":
        raise ImageReadError(f"{path.name} is a DICOM {ds.get('Modality', '?')} object, not a segmentation (SEG)")
    frames = pixels(ds, path.name)  # (F, Y, X)
    fractional = str(ds.get("SegmentationType", "BINARY")) == "FRACTIONAL"
    if fractional:
        frames = frames.astype(np.float32) / float(ds.get("MaximumFractionalValue", 255))
    numbers = [int(s.SegmentNumber) for s in ds.SegmentSequence]
    labels = [str(s.get("SegmentLabel", "")) for s in ds.SegmentSequence]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not per_frame or len(per_frame) != len(frames):
        raise ImageReadError(f"{path.name}: SEG needs one Per-frame Functional Group per frame")
    planes = [_plane(ds, g) for g in per_frame]
    if any(p is None for pl in planes for p in pl):
        raise ImageReadError(f"{path.name}: SEG frames lack plane position, orientation or pixel spacing")
    iop, spacing = planes[0][1], planes[0][2]
    seg_of_frame = [numbers.index(_segment_number(ds, g, path.name)) for g in per_frame]
    if reference is None:
        unique: list[np.ndarray] = []
        for pos, _, _ in planes:
            if not any(np.allclose(pos, u, atol=POSITION_TOL) for u in unique):
                unique.append(pos)
        step = _shared(ds).PixelMeasuresSequence[0].get("SpacingBetweenSlices") if _shared(ds) else None
        reference = _grid_through(unique, iop, spacing, step, path.name, ds.Rows, ds.Columns)
    ref = reference
    if (ds.Rows, ds.Columns) != ref.spatial_shape[1:]:
        raise ImageReadError(f"{path.name}: SEG frames are {ds.Rows}x{ds.Columns}, the reference is "
                             f"{ref.spatial_shape[1]}x{ref.spatial_shape[2]}")
    out = np.zeros((len(numbers), *ref.spatial_shape), dtype=np.float32 if fractional else np.uint8)
    inv = np.linalg.inv(ref.affine)
    for frame, (pos, iop_f, _), seg in zip(frames, planes, seg_of_frame, strict=True):
        if not np.allclose(iop_f, np.concatenate([ref.direction[:, 0], ref.direction[:, 1]]), atol=SPACING_RTOL):
            raise ImageReadError(f"{path.name}: a SEG frame's orientation differs from the reference grid")
        ijk = inv[:3, :3] @ pos + inv[:3, 3]  # (x, y, z) index of the frame's first pixel
        k = int(round(ijk[2]))
        if np.abs(ijk - [0, 0, k]).max() > 0.1 or not 0 <= k < out.shape[1]:
            raise ImageReadError(f"{path.name}: SEG frame at {pos.round(3).tolist()} is not on the reference "
                                 "grid (different series or geometry)")
        out[seg, k] = np.maximum(out[seg, k], frame)
    meta = {"modality": "SEG", "segmentation_type": "FRACTIONAL" if fractional else "BINARY",
            "segments": [{"number": n, "label": lab} for n, lab in zip(numbers, labels, strict=True)],
            "source": str(path), "geometry": "patient (LPS)"}
    return Volume(out, ref.spacing, ref.origin, ref.direction, meta)


def _segment_number(ds: Dataset, frame_groups: Dataset, name: str) -> int:
    """The segment a frame belongs to: per-frame Segment Identification, else the shared one
    (writers such as highdicom put it there when every frame has the same segment)."""
    for groups in (frame_groups, _shared(ds)):
        seq = groups.get("SegmentIdentificationSequence") if groups is not None else None
        if seq:
            return int(seq[0].ReferencedSegmentNumber)
    raise ImageReadError(f"{name}: a SEG frame has no Segment Identification (per-frame or shared)")


def _grid_through(positions: list[np.ndarray], iop, spacing, step, name: str, rows: int, cols: int) -> Volume:
    """The regular grid through a SEG's frame positions (gaps allowed when Spacing Between Slices is set)."""
    normal = np.cross(iop[:3], iop[3:])
    along = np.sort(np.asarray([p @ normal for p in positions]))
    first = positions[int(np.argmin([p @ normal for p in positions]))]
    if step is None:
        steps = np.diff(along)
        step = float(steps.min()) if len(steps) else 1.0
    step = float(step)
    n = int(round((along[-1] - along[0]) / step)) + 1 if len(along) > 1 else 1
    if n > 10 * max(len(along), 1) + 10:
        raise ImageReadError(f"{name}: SEG frames are too sparse to place without the referenced series; "
                             "pass reference=read_dicom_series(...)")
    vol = Volume(np.zeros((n, rows, cols), np.uint8), (float(spacing[1]), float(spacing[0]), step),
                 tuple(float(v) for v in first), np.stack([iop[:3], iop[3:], normal], axis=1))
    return vol
