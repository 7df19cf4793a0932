"""cnnkit.course.training: a step's own loss on every Keras 3, and the callbacks that count and time."""

import keras
import pytest
import numpy as np

from cnnkit.course.training import BatchCounter, batch_loss


def small_model():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="softmax")])
    # A zero learning rate keeps the weights, so every batch's loss can be computed afterwards.
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    return model


def own_loss(model, x, y):
    probabilities = keras.ops.convert_to_numpy(model(x))
    return float(-np.mean(np.log(probabilities[np.arange(len(y)), y])))


def test_batch_loss_is_the_loss_of_that_batch_alone():
    rng = np.random.default_rng(0)
    model = small_model()
    batches = [(rng.normal(size=(8, 6)).astype("float32") * scale, rng.integers(0, 4, 8))
               for scale in (0.1, 5.0, 1.0)]  # very different losses, so a running mean shows
    losses = [batch_loss(model, x, y) for x, y in batches]
    expected = [own_loss(model, x, y) for x, y in batches]
    np.testing.assert_allclose(losses, expected, rtol=1e-5)
    assert len(set(np.round(expected, 4))) == 3
    assert int(model.optimizer.iterations) == 3  # each call is one optimizer step


def test_batch_counter_counts_the_partial_batch():
    rng = np.random.default_rng(1)
    model = small_model()
    counter = BatchCounter()
    model.fit(rng.normal(size=(70, 6)), rng.integers(0, 4, 70), batch_size=16, epochs=2,
              callbacks=[counter], verbose=0)
    assert counter.per_epoch == [5, 5] and counter.total == 10


def test_progress_is_the_live_bar_unless_outputs_are_kept(monkeypatch):
    from cnnkit.course.training import progress, progress_bar

    monkeypatch.delenv("CNNKIT_PROGRESS", raising=False)
    assert progress() == 1 and progress_bar(5).verbose == 1
    monkeypatch.setenv("CNNKIT_PROGRESS", " Lines ")
    assert progress() == 2 and progress_bar(5, unit="optimizer").verbose == 2
    monkeypatch.setenv("CNNKIT_PROGRESS", "quiet")
    with pytest.raises(ValueError, match="'bar'.*'lines'"):
        progress()


def test_fit_with_progress_prints_one_line_per_epoch(monkeypatch, capsys):
    from cnnkit.course.training import progress

    monkeypatch.setenv("CNNKIT_PROGRESS", "lines")
    rng = np.random.default_rng(1)
    model = small_model()
    model.fit(rng.normal(size=(20, 6)), rng.integers(0, 4, 20), batch_size=8, epochs=3,
              verbose=progress())
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [line for line in lines if line.startswith("Epoch")] == ["Epoch 1/3", "Epoch 2/3",
                                                                  "Epoch 3/3"]
    assert sum(line.split()[:2] == ["3/3", "-"] for line in lines) == 3  # ceil(20 / 8) steps


def test_accuracy_counts_the_rows_whose_top_output_is_the_label():
    from cnnkit.course.training import accuracy

    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 4)).astype("float32")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, use_bias=False)(inputs))
    kernel = rng.normal(size=(4, 3)).astype("float32")
    model.layers[-1].set_weights([kernel])
    top = (x @ kernel).argmax(axis=1)
    y = top.copy()
    y[:75] = (y[:75] + 1) % 3  # a quarter wrong, across two batches of 256
    assert accuracy(model, x, y) == 0.75 and accuracy(model, x, top, batch_size=7) == 1.0


@pytest.mark.parametrize("backend, eager", [("tensorflow", True), ("jax", False),
                                            ("torch", False)])
def test_few_steps_run_eagerly_on_tensorflow_alone(monkeypatch, backend, eager):
    """The `run_eagerly` lesson 07's auxiliary-head step uses, decided by the backend in use."""
    from cnnkit.course.training import few_steps_eagerly

    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    assert few_steps_eagerly() is eager
