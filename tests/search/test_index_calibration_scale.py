"""NumpyIndex(calibration=...) stores unit vectors, so an unnormalised calibration sample must be normalised
before the int8 ranges are measured: only its directions matter (add() normalises every vector it stores)."""

from __future__ import annotations

import numpy as np
import pytest

from matryo.index import NumpyIndex
from matryo.quantize import Int8Codec
from matryo.vectors import normalize


@pytest.mark.parametrize(("first_pass", "store"), [("float32", "int8"), ("int8", "float32")])
def test_a_scaled_calibration_sample_gives_the_same_int8_codes(encoder, corpus, first_pass: str, store: str) -> None:
    ids, texts = corpus
    # unit rows; the +-e_j rows make every range exactly [-1, 1], so no later batch widens it (a widening
    # depends on float32 ulps of the sample's extremes, which normalising a scaled sample can move)
    eye = np.eye(encoder.dim, dtype=np.float32)
    sample = np.vstack([encoder.encode(texts[:150]), eye, -eye])
    unit: NumpyIndex[str] = NumpyIndex(encoder, truncate_dim=16, first_pass=first_pass, store=store, calibration=sample)
    scaled: NumpyIndex[str] = NumpyIndex(
        encoder, truncate_dim=16, first_pass=first_pass, store=store, calibration=sample * 40.0
    )
    for idx in (unit, scaled):
        idx.add(ids, texts)
    _, want = unit.fetch_full_vectors(ids)
    _, got = scaled.fetch_full_vectors(ids)
    np.testing.assert_allclose(got, want, atol=1e-6)
    for query in ("alpha beta", "omicron pi rho"):
        a = unit.search(query, k=10, mode="first_pass")
        b = scaled.search(query, k=10, mode="first_pass")
        assert a.ids == b.ids
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def test_a_sample_at_another_scale_widens_no_int8_range(encoder, corpus) -> None:
    # Normalised at another scale, a sample differs from the documents by float32 rounding; covering() took that
    # for growth and widened 41 of 64 ranges by its 25% headroom (steps up to 1.5x coarser).
    ids, texts = corpus
    vectors = encoder.encode(texts)
    for scale in (1.0, 40.0, 1e-3):
        idx: NumpyIndex[str] = NumpyIndex(
            encoder, truncate_dim=16, first_pass="int8", store="int8", calibration=vectors * scale
        )
        idx.add(ids, texts)
        calibrated = Int8Codec.calibrate(normalize(vectors * scale), warn=False)  # the sample, not widened
        assert idx._store_codec.to_config() == calibrated.to_config(), scale
    codec = Int8Codec(np.zeros(4, np.float32), np.ones(4, np.float32))
    assert codec.covering(np.full((1, 4), 1 + 1e-7, np.float32)) is codec  # within COVER_TOLERANCE of the span
    assert codec.covering(np.full((1, 4), 1 + 1e-5, np.float32)) is not codec
