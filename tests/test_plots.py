"""Plots draw what they say: one panel per image or metric, titles from the class names."""

import matplotlib

matplotlib.use("Agg")

import shutil  # noqa: E402
import struct  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cnnkit.course import plots  # noqa: E402


def test_image_grid_titles_come_from_class_names():
    images = np.random.default_rng(0).random((5, 8, 8, 1))
    fig = plots.plot_images(images, np.array([0, 1, 2, 1, 0]), ["cat", "dog", "eel"], columns=3)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 6  # two rows of three; the sixth panel is left empty
    assert titles == ["cat", "dog", "eel", "dog", "cat", ""]
    assert sum(bool(ax.images) for ax in fig.axes) == 5


def test_history_has_train_and_validation_curves():
    history = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6], "accuracy": [0.5, 0.8, 0.9]}
    fig = plots.plot_history(history)
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["train", "validation"]
    np.testing.assert_array_equal(loss_ax.lines[1].get_ydata(), [1.1, 0.7, 0.6])
    assert [line.get_label() for line in acc_ax.lines] == ["train"]


def test_iteration_losses_draw_one_mean_per_epoch():
    losses = [3.0, 1.0, 2.0, 0.5, 1.5, 0.4, 0.2]  # 3 iterations per epoch, the last epoch partial
    fig = plots.plot_iteration_losses(losses, iterations_per_epoch=3)
    means = [c for c in fig.axes[0].collections]
    ys = [segment[0][1] for c in means for segment in c.get_segments()]
    np.testing.assert_allclose(ys, [2.0, 0.8, 0.2])


def _inception_block():
    from cnnkit.models.googlenet import inception_module

    # GoogLeNet's inception (3a): 192 channels in, 64 + 128 + 32 + 32 = 256 out.
    return plots.block_model(inception_module, (28, 28, 192), (64, 96, 128, 16, 32, 32),
                             name="inception_3a")


def test_block_model_is_the_block_with_the_network_s_layer_names():
    import cnnkit

    block = _inception_block()
    assert block.name == "inception_3a" and tuple(block.output.shape) == (None, 28, 28, 256)
    googlenet = cnnkit.build("googlenet")
    inside = [layer.name for layer in block.layers[1:]]
    assert inside and all(googlenet.get_layer(name) is not None for name in inside)
    assert block.count_params() == sum(googlenet.get_layer(n).count_params() for n in inside)


def test_layer_graph_lists_every_layer_with_what_it_reads():
    table = plots.layer_graph(_inception_block()).splitlines()
    rows = {line.split()[0]: line for line in table[1:]}
    assert table[0].split() == ["layer", "kind", "output_shape", "params", "inputs"]
    assert len(rows) == 8  # six convolutions (ReLU inside each), the max pool, the concatenation
    assert rows["inception_3a_output"].endswith(
        "inception_3a_1x1, inception_3a_3x3, inception_3a_5x5, inception_3a_pool_proj")
    assert "28x28x256" in rows["inception_3a_output"]
    assert rows["inception_3a_3x3"].endswith("inception_3a_3x3_reduce")


def test_without_graphviz_one_line_says_why_and_the_table_stands_in(monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")  # pydot finds Graphviz's `dot` on PATH
    assert "Graphviz" in plots.graphviz_missing()
    assert plots.draw_model(_inception_block()) is None
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("No diagram: Graphviz's dot program is not installed")
    assert lines[1:] == plots.layer_graph(_inception_block()).splitlines()


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="Graphviz's dot is not installed here: the fallback test covers it")
def test_with_graphviz_the_diagram_is_a_png_wider_than_tall():
    image = plots.draw_model(_inception_block())  # four branches side by side
    assert image._repr_png_() is image.data and image.data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", image.data[16:24])
    assert width > 2 * height
    assert repr(image) == f"<diagram of inception_3a: PNG, {len(image.data):,} bytes>"


def test_block_model_takes_several_inputs_and_a_title():
    from cnnkit.models.fpn import fpn_level

    # FPN's P4: a 1x1 lateral of C4 (1024 maps) plus P5 upsampled twice, 256 maps each.
    block = plots.block_model(fpn_level, [(14, 14, 1024), (7, 7, 256)], 256, level=4,
                              title="fpn_p4")
    assert block.name == "fpn_p4" and len(block.inputs) == 2
    assert tuple(block.output.shape) == (None, 14, 14, 256)
    assert block.count_params() == 1024 * 256 + 256
    rows = {line.split()[0]: line for line in plots.layer_graph(block).splitlines()[1:]}
    assert rows["P4_merge"].endswith("P4_upsample, P4_lateral")


def test_block_model_passes_a_block_argument_named_block():
    from cnnkit.models.vgg import vgg_block

    # vgg_block(x, filters, convs, *, block): VGG-16's third block, 3 convolutions of 256.
    model = plots.block_model(vgg_block, (56, 56, 128), 256, 3, block=3, title="vgg16_block3")
    assert [layer.name for layer in model.layers[1:]] == [
        "block3_conv1", "block3_conv2", "block3_conv3", "block3_pool"]
    assert tuple(model.output.shape) == (None, 28, 28, 256)
    assert model.count_params() == (9 * 128 * 256 + 256) + 2 * (9 * 256 * 256 + 256)
