"""airbench94: trainable parameters derived from the paper's layer table (no outside figure).

Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU" (2024), Section 3.1 and Figure 2:
- a 2x2 whitening convolution from 3 channels to 2 · 3 · 2² = 24, its weights frozen (set from
  the training patches' covariance), its 24 biases trained;
- three ConvGroups of widths 64, 256, 256, each two 3x3 convolutions without bias and two
  BatchNorms whose scale is frozen at 1 (only β, one per channel, trains);
- a 10-way linear layer without bias after a max pool over the last 3x3 map.
"""

WIDTHS = (64, 256, 256)
WHITEN_CHANNELS = 2 * 3 * 2 ** 2
CLASSES = 10


def conv_group_params(c_in, c_out):
    """Two 3x3 convolutions without bias, two β vectors."""
    return 9 * c_in * c_out + c_out + 9 * c_out * c_out + c_out


def airbench_params(widths=WIDTHS, classes=CLASSES, channels=3):
    whiten = 2 * channels * 2 ** 2  # trainable: the biases only
    total, c_in = whiten, whiten
    for width in widths:
        total += conv_group_params(c_in, width)
        c_in = width
    return total + c_in * classes


AIRBENCH94_PARAMS = airbench_params()
