"""The committed digit model (webgpu/model/digits.onnx): held-out accuracy, shape, size, opset.

Runs with onnxruntime on the file as committed; the training script (torch) is not needed.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest

from tests.support.webgpu_digits import MODEL, SEED, TEST_SIZE, HeldOut, held_out


@pytest.fixture(scope="module")
def digits() -> HeldOut:
    return held_out()


@pytest.fixture(scope="module")
def session() -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])


def predict(session: onnxruntime.InferenceSession, images: np.ndarray) -> np.ndarray:
    (probabilities,) = session.run(["probabilities"], {"pixels": images[:, None, :, :]})
    return np.asarray(probabilities)


def test_held_out_accuracy_is_at_least_98_percent(
    session: onnxruntime.InferenceSession, digits: HeldOut
) -> None:
    probabilities = predict(session, digits.images)
    accuracy = float((probabilities.argmax(axis=1) == digits.labels).mean())
    assert len(digits.labels) == 450
    assert accuracy >= 0.98, f"held-out accuracy {accuracy:.4f}"


def test_outputs_are_probabilities_for_any_batch(
    session: onnxruntime.InferenceSession, digits: HeldOut
) -> None:
    for batch in (1, 7):
        probabilities = predict(session, digits.images[:batch])
        assert probabilities.shape == (batch, 10)
        assert probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        assert (probabilities >= 0).all()


def test_file_is_small_opset_17_and_says_how_it_was_split() -> None:
    assert MODEL.stat().st_size < 1_000_000
    model = onnx.load(str(MODEL))
    onnx.checker.check_model(model)
    assert {entry.domain or "ai.onnx": entry.version for entry in model.opset_import} == {"ai.onnx": 17}
    assert [i.name for i in model.graph.input] == ["pixels"]
    assert [o.name for o in model.graph.output] == ["probabilities"]
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    assert metadata["dataset"] == "sklearn.datasets.load_digits"
    assert int(metadata["seed"]) == SEED
    assert float(metadata["test_size"]) == TEST_SIZE
    assert float(metadata["held_out_accuracy"]) >= 0.98
