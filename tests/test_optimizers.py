"""AdaBound against a NumPy transcription of its update rule, step by step."""

import keras
import numpy as np
import pytest

from cnnkit.optimizers import AdaBound, adabound_bounds


def adabound_numpy(theta, gradients, lr=1e-3, final_lr=0.1, beta_1=0.9, beta_2=0.999,
                   gamma=1e-3, epsilon=1e-8, amsbound=False):
    """Luo et al. 2019, Algorithm 2 as the authors' code runs it, in float64; every step."""
    m, v, v_max = np.zeros_like(theta), np.zeros_like(theta), np.zeros_like(theta)
    history = []
    for t, g in enumerate(gradients, start=1):
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g ** 2
        v_max = np.maximum(v_max, v)
        alpha = lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        lower = final_lr * (1 - 1 / (gamma * t + 1))
        upper = final_lr * (1 + 1 / (gamma * t))
        eta = np.clip(alpha / (np.sqrt(v_max if amsbound else v) + epsilon), lower, upper)
        theta = theta - eta * m
        history.append(theta)
    return history


def gradients(steps=10, seed=0):
    rng = np.random.default_rng(seed)
    # Magnitudes from 1e-4 to 10, so some step sizes hit the lower bound and some the upper.
    return [rng.normal(size=(6, 4)) * 10 ** rng.uniform(-4, 1, size=(6, 4)) for _ in range(steps)]


@pytest.mark.parametrize("amsbound", [False, True])
@pytest.mark.parametrize("gamma", [1e-3, 0.5])
def test_adabound_matches_the_reference_at_every_step(amsbound, gamma):
    theta0 = np.random.default_rng(1).normal(size=(6, 4))
    grads = gradients()
    variable = keras.Variable(theta0.astype("float32"))
    optimizer = AdaBound(learning_rate=1e-2, final_lr=0.1, gamma=gamma, amsbound=amsbound)
    expected = adabound_numpy(theta0, grads, lr=1e-2, gamma=gamma, amsbound=amsbound)
    for g, want in zip(grads, expected):
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g.astype("float32")), variable)])
        np.testing.assert_allclose(np.array(variable), want, rtol=0, atol=2e-6)


def test_bounds_close_in_on_final_lr():
    lower, upper = adabound_bounds(np.array([1, 10, 1_000, 1_000_000]), final_lr=0.1, gamma=1e-3)
    np.testing.assert_allclose(lower, [0.1 * 0.001 / 1.001, 0.1 * 0.01 / 1.01, 0.05,
                                       0.1 * 1000 / 1001])
    np.testing.assert_allclose(upper, [100.1, 10.1, 0.2, 0.1001])
    assert np.all(np.diff(lower) > 0) and np.all(np.diff(upper) < 0)


def test_late_in_training_every_parameter_gets_sgds_step():
    # With gamma large the bounds are nearly closed after a few steps: AdaBound is then SGD
    # with learning rate final_lr applied to the momentum m, whatever each gradient's scale.
    theta0 = np.zeros((2,))
    grads = [np.array([1e-3, 1e3])] * 200
    expected = adabound_numpy(theta0, grads, lr=1.0, final_lr=0.01, gamma=0.9)
    steps = np.diff(np.stack(expected), axis=0)[-1]
    assert np.allclose(steps / -np.array([1e-3, 1e3]), 0.01, rtol=0.02)


def test_a_schedule_scales_the_bounds_with_the_learning_rate():
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-2, decay_steps=1, decay_rate=0.5)
    theta0 = np.ones((6, 4))
    grads = gradients(steps=4, seed=3)
    variable = keras.Variable(theta0.astype("float32"))
    optimizer = AdaBound(learning_rate=schedule, final_lr=0.1, gamma=0.5)
    for g in grads:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g.astype("float32")), variable)])
    # The reference with each step's learning rate, and final_lr scaled by lr / initial lr.
    theta, m, v = theta0, np.zeros_like(theta0), np.zeros_like(theta0)
    for t, g in enumerate(grads, start=1):
        lr = 1e-2 * 0.5 ** (t - 1)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g ** 2
        final = 0.1 * lr / 1e-2
        lower, upper = adabound_bounds(t, final, 0.5)
        eta = np.clip(lr * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) / (np.sqrt(v) + 1e-8),
                      lower, upper)
        theta = theta - eta * m
    np.testing.assert_allclose(np.array(variable), theta, atol=2e-6)


def test_a_model_compiled_with_adabound_saves_and_loads_safely(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    model.compile(optimizer=AdaBound(learning_rate=3e-3, final_lr=0.05, gamma=1e-2,
                                     amsbound=True), loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded.optimizer, AdaBound)
    config = loaded.optimizer.get_config()
    assert (config["final_lr"], config["gamma"], config["amsbound"]) == (0.05, 1e-2, True)
    assert int(loaded.optimizer.iterations) == 4
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(np.array(a), np.array(b))
    # Training on from the file continues exactly where the original left off.
    model.train_on_batch(x[:8], y[:8])
    loaded.train_on_batch(x[:8], y[:8])
    for a, b in zip(loaded.weights, model.weights):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(final_lr=0), "final_lr must be > 0"),
    (dict(gamma=0), "gamma must be in \\(0, 1\\)"),
    (dict(gamma=1.5), "gamma must be in \\(0, 1\\)"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdaBound(**kwargs)
