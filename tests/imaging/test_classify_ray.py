"""Batch classification spread over Ray gives the local table (DESIGN.md, Scale)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from smartcare.imaging.classify import classify_path
from smartcare.imaging.medmnist import load_split


@pytest.mark.slow  # starting a local Ray cluster takes ~20-30 s on 2 cores
def test_ray_chunks_equal_local(shared_data, tmp_path):
    import ray  # the `dist` extra, installed by `make test`

    images, labels = load_split("pneumoniamnist", "val", root=shared_data)[:2]
    np.savez(tmp_path / "x.npz", images=images[:40], labels=labels[:40])
    local = classify_path("pneumoniamnist", tmp_path / "x.npz", key="images", chunk=16)
    try:
        remote = classify_path("pneumoniamnist", tmp_path / "x.npz", key="images", chunk=16, use_ray=True)
    finally:
        if ray.is_initialized():
            ray.shutdown()
    assert len(local) == 40 and local["source"].tolist() == remote["source"].tolist()
    assert (local["pred"] == remote["pred"]).all()
    pd.testing.assert_frame_equal(remote, local, atol=1e-6)
