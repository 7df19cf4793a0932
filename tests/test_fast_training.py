"""cnnkit.fast_training and airbench94: each piece of the recipe checked against its definition."""

import dataclasses

import keras
import numpy as np
import pytest

import cnnkit
from cnnkit import analysis, data, fast_training as ft
from cnnkit.models.airbench import PartialIdentity

from derived_airbench import airbench_params
from helpers import to_numpy


def images(n=6, size=9, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, size, size, channels))
    # Neighbouring pixels and channels correlated, as in photographs.
    return (base + np.roll(base, 1, axis=2) + 0.5 * base[..., :1]).astype("float32")


def test_patches_are_in_the_order_of_a_keras_kernel():
    x = images()
    conv = keras.layers.Conv2D(5, 2, use_bias=False)
    out = to_numpy(conv(x))
    kernel = to_numpy(conv.kernel)  # (2, 2, 3, 5)
    by_patches = ft.patches(x, 2) @ kernel.reshape(-1, 5)
    np.testing.assert_allclose(by_patches, out.reshape(-1, 5), rtol=1e-5, atol=1e-5)
    assert ft.patches(x, 2).shape == (6 * 8 * 8, 12)


def test_whitening_weights_whiten_the_patches_exactly_without_eps():
    p = ft.patches(images(), 2)
    w = ft.whitening_weights(p, eps=0.0)
    filtered = p @ w.T
    np.testing.assert_allclose(filtered.T @ filtered / len(p), np.eye(12), atol=1e-9)
    values = np.linalg.eigvalsh(p.T @ p / len(p))[::-1]
    w = ft.whitening_weights(p, eps=0.5)
    np.testing.assert_allclose(np.diag(w @ (p.T @ p / len(p)) @ w.T), values / (values + 0.5))
    assert np.all(np.diff(1 / np.linalg.norm(w, axis=1) ** 2) <= 1e-12)  # largest λ first


def test_the_whitening_layer_whitens_its_input_after_init_whitening():
    x = images(n=8, size=12)
    model = cnnkit.build("airbench94", input_shape=(12, 12, 3), widths=(4, 4, 4))
    kernel = ft.init_whitening(model, x, eps=0.0)
    assert kernel.shape == (2, 2, 3, 24)
    np.testing.assert_array_equal(kernel[..., 12:], -kernel[..., :12])
    out = analysis.tap(model, ["whiten"], x)[0].reshape(-1, 24)[:, :12]  # bias starts at 0
    np.testing.assert_allclose(out.T @ out / len(out), np.eye(12), atol=1e-4)


def test_the_whitening_kernel_is_frozen_and_its_bias_trains():
    frozen = cnnkit.build("airbench94", widths=(4, 4, 4))
    trainable = cnnkit.build("airbench94", widths=(4, 4, 4), whitening="trainable")
    names = [w.path for w in frozen.trainable_weights]
    assert "whiten/kernel" not in names and "whiten/bias" in names
    assert "whiten/kernel" in [w.path for w in trainable.trainable_weights]
    assert analysis.count_params(trainable) - analysis.count_params(frozen) == 2 * 2 * 3 * 24
    group = 9 * 4 * 4 + 4 + 9 * 4 * 4 + 4  # a 4 -> 4 group: two convolutions, two β
    first = 9 * 24 * 4 + 4 + 9 * 4 * 4 + 4
    assert analysis.count_params(frozen) == airbench_params((4, 4, 4)) == (
        24 + first + 2 * group + 4 * 10)


def test_airbench94_has_the_papers_layers():
    model = cnnkit.build("airbench94")
    assert analysis.count_params(model) == airbench_params() == 1_971_352
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 6 and all(not bn.scale and bn.center for bn in bns)
    assert {(bn.momentum, bn.epsilon) for bn in bns} == {(0.6, 1e-12)}
    convs = [layer for layer in model.layers if type(layer) is keras.layers.Conv2D]
    assert [c.filters for c in convs] == [64, 64, 256, 256, 256, 256]
    assert not any(c.use_bias for c in convs) and not model.get_layer("fc").use_bias
    assert model.get_layer("block3_gelu2").output.shape[1:] == (3, 3, 256)


def test_partial_identity_passes_the_first_channels_through():
    kernel = to_numpy(PartialIdentity(seed=1)((3, 3, 4, 10)))
    for i in range(4):
        expected = np.zeros((3, 3, 4))
        expected[1, 1, i] = 1.0
        np.testing.assert_array_equal(kernel[..., i], expected)
    rest = kernel[..., 4:]
    assert np.all(np.abs(rest) <= 1 / np.sqrt(3 * 3 * 4)) and np.std(rest) > 0.05
    conv = keras.layers.Conv2D(4, 3, padding="same", use_bias=False,
                               kernel_initializer=PartialIdentity())
    x = images(n=2, channels=4)
    np.testing.assert_allclose(to_numpy(conv(x)), x, atol=1e-6)  # 4 -> 4: the identity


def test_triangular_schedule_at_its_corners():
    schedule = ft.TriangularSchedule(2.0, 100)
    got = [float(to_numpy(schedule(s))) for s in (0, 11, 23, 100, 150)]
    np.testing.assert_allclose(got, [0.4, 2 * (0.2 + 0.8 * 11 / 23), 2.0, 0.14, 0.14], rtol=1e-6)
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert again.get_config() == schedule.get_config()


def test_recipe_converts_the_papers_decoupled_hyperparameters():
    recipe = ft.Recipe()
    assert recipe.keras_lr == pytest.approx(1.5)  # 11.5 / (1 + 1 / 0.15)
    assert recipe.keras_l2 == pytest.approx(0.0153 / 11.5)
    assert recipe.steps(50_000) == 476  # ceil(48 batches of 1024 x 9.9 epochs)
    assert dataclasses.replace(recipe, batch_size=512).keras_lr == pytest.approx(0.75)


def _tiny_model():
    inputs = keras.Input((5, 5, 3))
    x = cnnkit.models.airbench.PatchWhitening(4, 2, name="whiten")(inputs)
    x = keras.layers.BatchNormalization(scale=False, name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, use_bias=False, name="fc")(x))


def test_airbench_sgd_scales_biases_gates_the_whitening_bias_and_adds_l2():
    model = _tiny_model()
    variables = model.trainable_variables
    assert [v.path for v in variables] == ["whiten/bias", "bn/beta", "fc/kernel"]
    opt = ft.AirbenchSGD(0.1, momentum=0.0, nesterov=False, l2=0.01, bias_scaler=64.0,
                         whiten_bias_steps=1, lookahead_every=0)
    rng = np.random.default_rng(0)
    for v in variables:
        v.assign(rng.normal(size=v.shape).astype("float32"))
    grads = [rng.normal(size=v.shape).astype("float32") for v in variables]
    for step in range(2):
        before = [to_numpy(v).copy() for v in variables]
        opt.apply(grads, variables)
        after = [to_numpy(v) for v in variables]
        gate = 1.0 if step == 0 else 0.0  # the whitening bias trains for one step only
        expected = [b - 0.1 * (s * g + 0.01 * b)
                    for b, g, s in zip(before, grads, (gate, 64.0, 1.0))]
        for a, e in zip(after, expected):
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def test_lookahead_moves_the_weights_to_the_slow_copy_every_k_steps():
    model = _tiny_model()
    variables = model.trainable_variables
    opt = ft.AirbenchSGD(0.1, momentum=0.0, nesterov=False, bias_scaler=1.0,
                         lookahead_every=2, total_steps=4)
    grads = [np.ones(v.shape, "float32") for v in variables]
    start = [to_numpy(v).copy() for v in variables]
    history = []
    for _ in range(4):
        opt.apply(grads, variables)
        history.append([to_numpy(v).copy() for v in variables])
    # step 2: the first visit copies the weights (start - 0.2); step 4: decay 0.95^5 · 1³.
    decay = 0.95 ** 5
    for s, v2, v4 in zip(start, history[1], history[3]):
        np.testing.assert_allclose(v2, s - 0.2, rtol=1e-5, atol=1e-6)
        fast = s - 0.4
        np.testing.assert_allclose(v4, (s - 0.2) + (1 - decay) * (fast - (s - 0.2)), rtol=1e-5,
                                   atol=1e-6)


def test_alternating_flips_mirror_each_image_once_every_two_epochs():
    first = np.random.default_rng(0).random(101) < 0.5
    flips = np.stack([ft.alternating_flips(first, e) for e in range(6)])
    np.testing.assert_array_equal(flips[0], first)
    np.testing.assert_array_equal(flips[1], ~first)
    np.testing.assert_array_equal(flips.sum(axis=0), np.full(101, 3))
    np.testing.assert_array_equal(flips[0] ^ flips[1], np.ones(101, bool))


def test_translate_moves_each_image_by_its_shift_with_a_reflected_border():
    x = images(n=3, size=6)
    shifts = np.array([[0, 0], [1, -1], [-2, 2]])
    out = ft.translate(x, shifts, 2)
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(out[0], x[0])
    np.testing.assert_array_equal(out[1], padded[1, 3:9, 1:7])
    np.testing.assert_array_equal(out[2], padded[2, 0:6, 4:10])


def test_airbench_batches_alternate_flips_and_one_hot_the_labels():
    x = images(n=40, size=6)
    y = np.arange(40) % 4
    batches = ft.AirbenchBatches(x, y, 4, batch_size=16, flip="alternating", translate=0)
    assert len(batches) == 2  # the partial batch of 8 is dropped
    xb, yb = batches[0]
    assert xb.shape == (16, 6, 6, 3) and yb.shape == (16, 4)
    np.testing.assert_array_equal(yb.argmax(1), y[batches.order[:16]])
    epoch0 = batches.images.copy()
    batches.on_epoch_end()
    np.testing.assert_array_equal(batches.images, epoch0[:, :, ::-1])
    mirrored = batches.first_flips
    np.testing.assert_array_equal(epoch0[mirrored], x[mirrored][:, :, ::-1])


def test_tta_logits_average_the_views():
    model = cnnkit.build("airbench94", input_shape=(12, 12, 3), widths=(4, 4, 4),
                         classifier_activation=None)
    x = images(n=4, size=12)
    plain = to_numpy(model.predict(x, verbose=0))
    np.testing.assert_allclose(ft.tta_logits(model, x, 0), plain, rtol=1e-5, atol=1e-6)
    mirror = to_numpy(model.predict(x[:, :, ::-1], verbose=0))
    np.testing.assert_allclose(ft.tta_logits(model, x, 1), (plain + mirror) / 2, rtol=1e-5,
                               atol=1e-6)
    up = ft.translate(x, np.full((4, 2), -1), 1)
    views = [model.predict(v, verbose=0) for v in (up, up[:, :, ::-1])]
    level2 = ft.tta_logits(model, x, 2)
    # level 2 = (plain + mirror)/4 + (up + up mirrored)/8 + (down + down mirrored)/8
    down = 8 * (level2 - 0.25 * (plain + mirror)) - (views[0] + views[1])
    down_right = ft.translate(x, np.full((4, 2), 1), 1)
    expected = [model.predict(v, verbose=0) for v in (down_right, down_right[:, :, ::-1])]
    np.testing.assert_allclose(down, expected[0] + expected[1], rtol=1e-4, atol=1e-5)


def test_cifar10_stand_in_is_ten_photographs_split_by_region(monkeypatch, capsys):
    monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    ds = data.load("cifar10")
    assert "OFFLINE" in capsys.readouterr().out
    x, y = ds.numpy("train")
    xt, yt = ds.numpy("test")
    assert x.shape == (5000, 32, 32, 3) and xt.shape == (1000, 32, 32, 3)
    assert ds.num_classes == 10 and ds.class_names[1] == "chelsea"
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 500))
    np.testing.assert_array_equal(np.bincount(yt), np.full(10, 100))
    assert len(set(y[:50])) == 10  # the classes are interleaved
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_train_runs_the_whole_recipe_for_its_exact_number_of_steps():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 16, 16, 3)).astype("float32")
    y = (x[:, :8].mean(axis=(1, 2, 3)) > x[:, 8:].mean(axis=(1, 2, 3))).astype("int32")
    recipe = ft.Recipe(epochs=2.5, batch_size=32, widths=(4, 8, 8), whiten_bias_epochs=1)
    result = ft.train(recipe, x, y, x[:40], y[:40], classes=2)
    assert result.steps == recipe.steps(96) == 8
    assert 0.0 <= result.accuracy <= 1.0 and 0.0 <= result.tta_accuracy <= 1.0
    assert len(result.history["loss"]) == 3 and np.all(np.isfinite(result.history["loss"]))
    assert keras.mixed_precision.global_policy().name == "float32"
