"""``optimise_for_inference``: a bf16-autocast copy of a DNA classifier predicts like eager float32."""

from __future__ import annotations

import numpy as np
import torch

from smartcare.genomics.dnalm.model import CnnClassifier, CnnConfig
from smartcare.genomics.dnalm.predict import Classifier, optimise_for_inference, predict
from smartcare.genomics.dnalm.tokenizers import char_tokenizer


def test_optimised_classifier_matches_eager():
    torch.manual_seed(0)
    tok = char_tokenizer()
    clf = Classifier(CnnClassifier(tok.vocab_size, CnnConfig(embed=4, channels=8, kernel=3, layers=2)).eval(),
                     tok, 64, {"name": "tiny"})
    seqs = ["ACGTACGTTTGA", "GGGCCCAAATTTACG", "acgtnnacgt"]
    eager = predict(clf, seqs)
    fast = predict(optimise_for_inference(clf), seqs)
    assert list(fast.columns) == list(eager.columns) and len(fast) == 3
    np.testing.assert_allclose(fast[["p_0", "p_1"]].to_numpy(), eager[["p_0", "p_1"]].to_numpy(), atol=3e-2)
    assert not isinstance(clf.model, type(optimise_for_inference(clf).model))  # original untouched
