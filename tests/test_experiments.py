"""cnnkit.course.experiments: the paper's CIFAR-10 networks, and models trained side by side."""

import numpy as np
import pytest

import keras
from cnnkit.analysis import count_params
from cnnkit.course.experiments import cifar_resnet, train_side_by_side


def cifar_params(n, width=16, channels=3, classes=10):
    """Trainable parameters of the 6n+2 network, counted by hand (convolutions have no bias)."""
    w = width
    stem = 9 * channels * w + 2 * w
    stage1 = n * (2 * 9 * w * w + 4 * w)
    stage2 = (9 * w * 2 * w + 9 * 4 * w * w + 8 * w) + (n - 1) * (2 * 9 * 4 * w * w + 8 * w)
    stage3 = (9 * 2 * w * 4 * w + 9 * 16 * w * w + 16 * w) + (n - 1) * (
        2 * 9 * 16 * w * w + 16 * w)
    return stem + stage1 + stage2 + stage3 + 4 * w * classes + classes


# He et al. 2015, Table 6: ResNet-20, 32, 44, 56 have 0.27M, 0.46M, 0.66M, 0.85M parameters.
@pytest.mark.parametrize("n, millions", [(3, 0.27), (5, 0.46), (7, 0.66), (9, 0.85)])
def test_cifar_resnet_has_the_papers_parameters_and_6n_plus_2_layers(n, millions):
    model = cifar_resnet(n)
    assert count_params(model) == cifar_params(n)
    assert round(count_params(model) / 1e6, 2) == millions
    weighted = [layer for layer in model.layers
                if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    assert len(weighted) == 6 * n + 2
    assert model.name == f"resnet{6 * n + 2}"


def test_resnet20_count_is_the_known_exact_figure():
    assert count_params(cifar_resnet(3)) == cifar_params(3) == 269_722


def test_plain_twin_has_the_same_parameters_and_no_addition():
    plain = cifar_resnet(5, shortcut=False, width=8, input_shape=(32, 32, 1))
    residual = cifar_resnet(5, shortcut="zero_pad", width=8, input_shape=(32, 32, 1))
    assert plain.name == "plain32"
    assert count_params(plain) == count_params(residual) == cifar_params(5, 8, 1)
    adds = [sum(isinstance(layer, keras.layers.Add) for layer in m.layers)
            for m in (plain, residual)]
    assert adds == [0, 15]
    shapes = [residual.get_layer(f"conv{s}_block5_out").output.shape[1:] for s in (2, 3, 4)]
    assert shapes == [(32, 32, 8), (16, 16, 16), (8, 8, 32)]


def test_option_b_adds_two_projections():
    a, b = cifar_resnet(3, "zero_pad"), cifar_resnet(3, True)
    assert count_params(b) - count_params(a) == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)


@pytest.mark.parametrize("n", [0, 2.0, True, "3"])
def test_bad_n_is_refused(n):
    with pytest.raises(ValueError, match="6n \\+ 2 layers"):
        cifar_resnet(n)


class Recorder:
    """Stands in for a compiled model: records every batch and returns a made-up loss."""

    def __init__(self, loss=1.0, sleep=0.0):
        self.batches, self.loss, self.sleep = [], loss, sleep

    def reset_metrics(self):  # cnnkit.course.training.batch_loss resets before every step
        self.resets = getattr(self, "resets", 0) + 1

    def train_on_batch(self, x, y):
        import time

        time.sleep(self.sleep)
        self.batches.append((np.array(x), np.array(y)))
        self.loss *= 0.9
        return self.loss


def tagged_data(n=50):
    x = np.arange(n, dtype="float32").reshape(n, 1)  # each row says which example it is
    return x, (np.arange(n) % 10).astype("int32")


def test_every_model_gets_the_same_batches_in_the_same_order():
    x, y = tagged_data()
    a, b = Recorder(), Recorder(loss=2.0)
    run = train_side_by_side({"a": a, "b": b}, x, y, batch_size=8, epochs=3, seed=1)
    assert run.steps_per_epoch == 50 // 8 == 6 and run.steps == run.planned_steps == 18
    assert run.epochs == 3 and not run.stopped_early
    assert len(a.batches) == len(b.batches) == 18
    for (xa, ya), (xb, yb) in zip(a.batches, b.batches):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(ya, y[xa[:, 0].astype(int)])  # labels stay with images
        assert len(xa) == 8  # the partial last batch is dropped
    epochs = [np.concatenate([bx[:, 0] for bx, _ in a.batches[e * 6:(e + 1) * 6]])
              for e in range(3)]
    for order in epochs:
        assert len(np.unique(order)) == 48  # no example twice in an epoch
    assert not np.array_equal(epochs[0], epochs[1])  # a new order every epoch
    np.testing.assert_allclose(run.losses["a"], [0.9 ** k for k in range(1, 19)])
    np.testing.assert_allclose(run.losses["b"], [2 * 0.9 ** k for k in range(1, 19)])


def test_partial_batch_can_be_kept():
    x, y = tagged_data()
    a = Recorder()
    run = train_side_by_side({"a": a}, x, y, batch_size=8, epochs=2, drop_remainder=False)
    assert run.steps_per_epoch == 7 and [len(bx) for bx, _ in a.batches][:7] == [8] * 6 + [2]
    assert sorted(np.concatenate([bx[:, 0] for bx, _ in a.batches[:7]])) == list(range(50))


def test_time_budget_stops_both_models_after_the_same_step():
    x, y = tagged_data()
    a, b = Recorder(sleep=0.02), Recorder(sleep=0.02)
    run = train_side_by_side({"a": a, "b": b}, x, y, batch_size=5, epochs=100, seconds=0.2)
    assert run.stopped_early and 3 <= run.steps < run.planned_steps == 1000
    assert len(a.batches) == len(b.batches) == run.steps
    assert run.seconds >= 0.2 and set(run.step_seconds) == {"a", "b"}


def test_final_loss_and_smoothing():
    x, y = tagged_data(40)
    run = train_side_by_side({"a": Recorder()}, x, y, batch_size=4, epochs=3)
    losses = np.array(run.losses["a"])
    assert run.final_loss("a") == pytest.approx(losses[-6:].mean())  # the last fifth
    assert run.final_loss("a", last=3) == pytest.approx(losses[-3:].mean())
    smooth = run.smoothed("a", window=5)
    assert len(smooth) == 30 - 4 and smooth[0] == pytest.approx(losses[:5].mean())
    assert len(run.smoothed("a")) == 30 - 5
    long = train_side_by_side({"a": Recorder()}, x, y, batch_size=4, epochs=8)
    assert long.final_loss("a") == pytest.approx(np.mean(long.losses["a"][-10:]))  # one epoch


def test_a_real_model_trains_on_the_same_batches():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((16, 8, 8, 1), dtype=np.float32)
    y = np.arange(16) % 2
    model = cifar_resnet(1, width=4, input_shape=(8, 8, 1), classes=2)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    run = train_side_by_side({"resnet8": model}, x, y, batch_size=8, epochs=2)
    assert run.steps == int(model.optimizer.iterations) == 4
    assert all(np.isfinite(run.losses["resnet8"]))


@pytest.mark.parametrize("kwargs, message", [
    (dict(models={}), "at least one model"),
    (dict(y=np.zeros(3)), "same, non-zero number"),
    (dict(batch_size=64), "no full batch of 64"),
])
def test_bad_arguments_are_refused(kwargs, message):
    x, y = tagged_data()
    args = dict(models={"a": Recorder()}, x=x, y=y, batch_size=8)
    args.update(kwargs)
    models = args.pop("models")
    with pytest.raises(ValueError, match=message):
        train_side_by_side(models, **args)


def test_progress_ends_in_one_line_with_every_model_s_last_loss(monkeypatch, capsys):
    monkeypatch.setenv("CNNKIT_PROGRESS", "lines")  # as tools/refresh_notebooks.py runs lessons
    x, y = tagged_data()
    run = train_side_by_side({"a": Recorder(), "b": Recorder(loss=2.0)}, x, y, batch_size=8,
                             epochs=2)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].split()[:2] == [f"{run.steps}/{run.planned_steps}", "-"]
    # The 12th step's losses: 0.9^12 for a, 2 * 0.9^12 for b (not a mean over the steps).
    assert f"a loss: {0.9 ** 12:.4f} - b loss: {2 * 0.9 ** 12:.4f}" in lines[0]


def test_progress_stops_where_the_time_budget_stops(monkeypatch, capsys):
    monkeypatch.setenv("CNNKIT_PROGRESS", "lines")
    x, y = tagged_data()
    run = train_side_by_side({"a": Recorder(sleep=0.02)}, x, y, batch_size=5, epochs=100,
                             seconds=0.1)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert run.stopped_early and len(lines) == 1
    assert lines[0].split()[:2] == [f"{run.steps}/1000", "-"]


def test_lesson_15s_gap_net_has_the_layers_cam_reads():
    from cnnkit.course.experiments import small_gap_net

    net = small_gap_net((40, 40, 1), 10, "gap_net")
    # conv1 5*5*1*16+16, conv2 3*3*16*32+32, conv3 3*3*32*64+64, fc 64*10+10
    assert count_params(net) == 416 + 4_640 + 18_496 + 650 == 24_202
    assert net.get_layer("conv3").output.shape[1:] == (10, 10, 64)
    assert net.get_layer("fc").input.shape[1:] == (64,) and net.output.shape[1:] == (10,)
