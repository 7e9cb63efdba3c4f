import numpy as np

from reason_classifier.training.calibration import expected_calibration_error, fit_temperature


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_overconfident():
    confidence = np.full(1000, 0.8)
    correct = np.arange(1000) < 800
    assert expected_calibration_error(confidence, correct) < 1e-9
    assert expected_calibration_error(np.full(1000, 0.99), correct) > 0.15


def test_fit_temperature_recovers_the_temperature_that_generated_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(4000, 3))
    true_temperature = 2.0
    probabilities = np.exp(logits / true_temperature)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(3, p=p) for p in probabilities])
    fitted = fit_temperature(logits, np.eye(3), labels)
    assert abs(fitted - true_temperature) < 0.2
