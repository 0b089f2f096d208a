"""Image readers: DICOM (file, multi-frame, series, SEG), NIfTI (nibabel), NRRD (pynrrd), PNG (Pillow), NPZ.

Every reader returns a ``Volume`` (``imaging.volume``): array indexed (..., Z, Y, X) with LPS geometry, so
that files of different formats holding the same data compare voxel for voxel. Damaged or mismatched
input raises ``ImageReadError`` (a ``SmartcareError``) naming the file and the problem.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from smartcare.imaging.dicom import read_dicom, read_dicom_seg, read_dicom_series
from smartcare.imaging.volume import ImageReadError, Volume, geometry_from_affine

__all__ = ["ImageReadError", "Volume", "read_dicom", "read_dicom_seg", "read_dicom_series", "read_image",
           "read_nifti", "read_npz", "read_nrrd", "read_png", "is_dicom"]

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def is_dicom(path: Path | str) -> bool:
    """True when the file has the DICOM Part 10 'DICM' marker at byte 128."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def read_nifti(path: Path | str) -> Volume:
    """NIfTI-1/2 (``.nii``, ``.nii.gz``) -> ``Volume``; scl_slope/inter applied; 4D data as (T, Z, Y, X).

    The NIfTI affine (RAS+) is converted to LPS.
    """
    import nibabel as nib

    path = Path(path)
    try:
        img = nib.load(str(path))
        _check_nifti_size(path, img)
        data = np.asanyarray(img.dataobj)
    except ImageReadError:
        raise
    except (nib.filebasedimages.ImageFileError, nib.spatialimages.HeaderDataError, EOFError, OSError,
            ValueError, OverflowError, MemoryError, zlib.error) as err:
        detail = " ".join(str(err).split()) or type(err).__name__  # one line, even for nibabel's 2-line texts
        if isinstance(err, OverflowError | MemoryError):
            detail = "the header's data size or offset is impossible (corrupt dim, datatype or vox_offset)"
        raise ImageReadError(f"{path.name} is not a readable NIfTI file (corrupt or truncated?): "
                             f"{detail}") from err
    if data.ndim < 2:
        raise ImageReadError(f"{path.name}: NIfTI data has {data.ndim} dimension(s); need at least 2")
    data = data.reshape(data.shape + (1,) * max(0, 3 - data.ndim))
    data = data.reshape(data.shape[:3] + (-1,)) if data.ndim > 4 else data  # (X, Y, Z[, T])
    array = np.ascontiguousarray(np.transpose(data, tuple(range(data.ndim))[::-1]))  # (T, Z, Y, X)
    if array.dtype.byteorder not in ("=", "|"):
        array = array.astype(array.dtype.newbyteorder("="))
    spacing, origin, direction = geometry_from_affine(RAS_TO_LPS @ img.affine)
    zooms = img.header.get_zooms()
    meta = {"format": "nifti", "source": str(path), "geometry": "patient (LPS)"}
    if len(zooms) > 3:
        meta["time_step"] = float(zooms[3])
    return Volume(array, spacing, origin, direction, meta)


def _check_nifti_size(path: Path, img) -> None:
    """Refuse a header whose data block cannot fit in the file (a corrupt ``dim``/``datatype``/``vox_offset``)
    before nibabel tries to allocate it. gzip expands at most ~1032:1, so compressed files get that bound."""
    shape = img.header.get_data_shape()
    itemsize = img.header.get_data_dtype().itemsize
    need = int(np.prod([int(n) for n in shape], dtype=object)) * itemsize
    offset = int(img.header.get("vox_offset", 0) or 0) if hasattr(img.header, "get") else 0
    have = path.stat().st_size
    compressed = path.name.lower().endswith(".gz")
    limit = have * 1100 if compressed else have - offset
    if need > limit:
        raise ImageReadError(f"{path.name} is not a readable NIfTI file (corrupt or truncated?): the header "
                             f"declares {'x'.join(str(int(n)) for n in shape)} voxels of {itemsize} byte(s) "
                             f"({need} bytes) but the file holds {have} bytes")


def read_nrrd(path: Path | str) -> Volume:
    """NRRD (``.nrrd``, ``.nhdr``) -> ``Volume``. Non-spatial axes (``space directions`` "none") come first."""
    import nrrd

    path = Path(path)
    try:
        data, header = nrrd.read(str(path), index_order="C")  # axes reversed: (..., Z, Y, X)
    except Exception as err:  # pynrrd raises NRRDError, ValueError, zlib/EOF errors on damaged files
        raise ImageReadError(f"{path.name} is not a readable NRRD file (corrupt or truncated?): {err}") from err
    dirs = header.get("space directions")
    if dirs is None:
        spatial = list(range(min(3, data.ndim)))  # file-order axes treated as spatial
        vectors = [np.eye(3)[i] for i in spatial]
    else:
        spatial = [i for i, d in enumerate(dirs) if d is not None and not np.all(np.isnan(np.asarray(d, float)))]
        vectors = [np.asarray(dirs[i], dtype=float) for i in spatial]
    if not 2 <= len(spatial) <= 3:
        raise ImageReadError(f"{path.name}: NRRD has {len(spatial)} spatial axes; need 2 or 3")
    nd = data.ndim
    c_axes = [nd - 1 - i for i in spatial]  # C-order positions of file axes x, y, z
    others = [a for a in range(nd) if a not in c_axes]
    array = np.transpose(data, others + c_axes[::-1])  # (..., Z, Y, X)
    if len(spatial) == 2:
        array = array[..., None, :, :]
        vectors.append(np.cross(vectors[0], vectors[1]) / np.linalg.norm(np.cross(vectors[0], vectors[1])))
    affine = np.eye(4)
    affine[:3, :3] = np.stack(vectors, axis=1)
    affine[:3, 3] = np.asarray(header.get("space origin", np.zeros(3)), dtype=float)
    space = str(header.get("space", "left-posterior-superior")).lower()
    if space in ("right-anterior-superior", "ras", "scanner-xyz"):
        affine = RAS_TO_LPS @ affine
    elif space not in ("left-posterior-superior", "lps"):
        raise ImageReadError(f"{path.name}: NRRD space {space!r} is not supported (use LPS or RAS)")
    spacing, origin, direction = geometry_from_affine(affine)
    return Volume(np.ascontiguousarray(array), spacing, origin, direction,
                  {"format": "nrrd", "source": str(path), "geometry": "patient (LPS)"})


def read_png(path: Path | str) -> Volume:
    """PNG/JPEG/TIFF via Pillow -> ``Volume`` (1, Y, X) for grayscale, (3, 1, Y, X) for colour."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("P", "PA", "LA", "RGBA", "CMYK", "YCbCr", "1"):
                img = img.convert("RGB" if img.mode not in ("LA", "1") else "L")
            array = np.asarray(img)
            fmt = (img.format or path.suffix.lstrip(".") or "png").lower()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        detail = str(err).replace(f"'{path}'", "").replace(str(path), path.name).strip()  # no server paths
        raise ImageReadError(f"{path.name} is not a readable image file (corrupt or truncated?): {detail}"
                             ) from err
    if array.ndim == 3:
        array = np.moveaxis(array, -1, 0)[:, None]  # (C, 1, Y, X)
    else:
        array = array[None]  # (1, Y, X)
    return Volume(np.ascontiguousarray(array), meta={"format": fmt, "source": str(path),
                                                      "geometry": "pixel grid (no patient geometry)"})


def read_npz(path: Path | str, key: str | None = None) -> np.ndarray:
    """One array from an ``.npz``: ``key``, or the only array, or the only ``*images`` array.

    Raises ``ImageReadError`` when the file is damaged or the choice is ambiguous (the message lists keys).
    """
    return _read_npz(Path(path), key)[1]


def _read_npz(path: Path, key: str | None) -> tuple[str, np.ndarray]:
    """``(chosen key, array)`` for ``read_npz``."""
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise ImageReadError(f"{path.name} is not a readable NPZ file (corrupt or truncated?): not a zip archive")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            if key is None:
                images = [k for k in keys if k.endswith("images")]
                if len(keys) == 1 or len(images) == 1:
                    key = keys[0] if len(keys) == 1 else images[0]
                else:
                    raise ImageReadError(f"{path.name} holds several arrays ({', '.join(keys)}); choose one with "
                                         "--key")
            if key not in keys:
                raise ImageReadError(f"{path.name} has no array {key!r} (keys: {', '.join(keys)})")
            return key, np.asarray(npz[key])
    except ImageReadError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ImageReadError(f"{path.name} is not a readable NPZ file (corrupt or truncated?): {err}") from err


def read_image(path: Path | str, key: str | None = None) -> Volume:
    """Read any supported file, or a folder holding one DICOM series, by its name and content."""
    path = Path(path)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        if not files:
            raise ImageReadError(f"{path}: the folder is empty (a folder input must hold one DICOM series)")
        if not any(p.name.lower().endswith((".dcm", ".dicom")) or is_dicom(p) for p in files):
            raise ImageReadError(f"{path}: the folder holds no DICOM files; a folder input must be one DICOM "
                                 "series (give other images one file at a time)")
        return read_dicom_series(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file or folder")
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return read_nifti(path)
    if name.endswith((".nrrd", ".nhdr")):
        return read_nrrd(path)
    if name.endswith(".npz"):
        chosen, arr = _read_npz(path, key)
        arr = arr.reshape((1,) * max(0, 3 - arr.ndim) + arr.shape)
        return Volume(arr, meta={"format": "npz", "source": str(path), "key": chosen})
    if name.endswith((".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")):
        return read_png(path)
    if name.endswith((".dcm", ".dicom")) or is_dicom(path):
        return read_dicom(path)
    raise ImageReadError(f"{path.name}: unknown image format (expected DICOM, NIfTI, NRRD, PNG or NPZ)")


def read_seg_for(seg_path: Path | str, series: Path | str) -> tuple[Volume, Volume]:
    """Read a source series and its DICOM SEG placed on the series grid: ``(image, segmentation)``."""
    image = read_dicom_series(series)
    return image, read_dicom_seg(seg_path, reference=image)
