"""Windowing presets and MONAI dictionary pipelines."""

from __future__ import annotations

import numpy as np
import pytest

from smartcare.core.errors import SmartcareError
from smartcare.imaging.transforms import (
    WINDOW_PRESETS,
    classification_pipeline,
    classifier_input_pipeline,
    ct_window_pipeline,
    window,
)


def test_window_presets_map_level_to_half():
    for name, (level, width) in WINDOW_PRESETS.items():
        out = window(np.array([level - width, level, level + width]), name)
        np.testing.assert_allclose(out, [0.0, 0.5, 1.0])
    assert window(np.array([-1000.0]), "lung")[0] == pytest.approx((-1000 + 1350) / 1500)
    with pytest.raises(SmartcareError, match="unknown window preset"):
        window(np.zeros(1), "brain-ish")


def test_ct_window_pipeline_is_a_dictionary_transform():
    hu = np.array([[[-1024.0, 40.0, 3000.0]]])
    out = ct_window_pipeline("soft_tissue")({"image": hu, "id": "x"})
    assert out["id"] == "x"
    np.testing.assert_allclose(np.asarray(out["image"]).ravel(), [0.0, 0.5, 1.0])


def test_classification_pipelines_shapes_and_ranges():
    img = np.random.default_rng(0).integers(0, 256, (1, 28, 28)).astype(np.float32)
    for train in (False, True):
        out = classification_pipeline(train)({"image": img})["image"]
        assert tuple(out.shape) == (1, 28, 28)
        assert float(out.min()) >= -1.0 and float(out.max()) <= 1.0
    rgb16 = np.random.default_rng(1).integers(0, 4096, (3, 100, 80)).astype(np.float32)
    small = classifier_input_pipeline(28)({"image": rgb16, "dtype": np.uint16, "invert": False})["image"]
    assert small.shape == (1, 28, 28) and 0.0 <= small.min() and small.max() <= 255.0
