"""Graders of exercise 15 · What networks learn (solutions/15_what_networks_learn.ipynb)."""

from __future__ import annotations

import numpy as np

from .core import array, expect, grade, one_of, student

__all__ = ["check_grad_cam"]


def _networks(rng, image_shape, maps, classes, head, positive=False):
    """(features, head) Keras models with random weights: image -> A (ReLU maps) -> scores.

    head "flatten" (a dense layer on every position), "mlp" (1x1 conv, ReLU, global average
    pooling, dense) or "gap" (global average pooling, dense: Grad-CAM is then CAM). `positive`
    makes every map and the class weights positive, so the whole Grad-CAM map is above zero."""
    import keras

    layers = keras.layers
    inputs = keras.Input(image_shape)
    a = layers.Conv2D(maps, 3, strides=2, activation="relu")(inputs)
    features = keras.Model(inputs, a)
    head_in = keras.Input(tuple(a.shape[1:]))
    x = head_in
    if head == "flatten":
        x = layers.Flatten()(x)
    else:
        if head == "mlp":
            x = layers.Conv2D(6, 1, activation="relu")(x)
        x = layers.GlobalAveragePooling2D()(x)
    scores = keras.Model(head_in, layers.Dense(classes)(x))
    for model in (features, scores):
        for layer in model.layers:
            values = [rng.normal(0, 0.5, w.shape).astype("float32") for w in layer.get_weights()]
            if positive:
                values = [np.abs(v) + (0.5 if v.ndim == 1 else 0.0) for v in values]
            layer.set_weights(values)
    return features, scores


def _cases():
    """(features, head, image, class_index), each with a Grad-CAM map whose maximum is > 0."""
    import keras

    rng = np.random.default_rng(15)
    specs = [  # image shape, maps, classes, head, positive
        ((13, 17, 3), 3, 4, "flatten", False),  # as many maps as colours: A's shape ≠ x's still
        ((15, 11, 2), 5, 3, "mlp", False),
        ((11, 11, 3), 4, 5, "flatten", False),  # square maps: a transposed answer has its shape
        ((17, 13, 1), 6, 4, "mlp", False),
        ((13, 15, 3), 4, 3, "gap", False),
        ((11, 15, 2), 3, 4, "flatten", True),  # positive everywhere: nothing for ReLU to cut
    ]
    cases = []
    for shape, maps, classes, head, positive in specs:
        features, scores = _networks(rng, shape, maps, classes, head, positive)
        image = rng.normal(0, 1, shape).astype("float32")
        image = np.abs(image) if positive else image
        a = keras.ops.convert_to_numpy(features(image[None]))[0]
        heats = [_grad_cam_parts(features, scores, image, c)[1] for c in range(classes)]
        usable = [c for c in range(classes) if heats[c].max() > 1e-3 * np.abs(heats[c]).max()
                  and (positive or heats[c].min() < 0)
                  and (shape[-1] != maps or _image_gradient_map(features, scores, image,
                                                                c).max() > 0)]
        # Away from class 0 and from the class the network picks, when another one serves.
        top = int(np.argmax(keras.ops.convert_to_numpy(scores(a[None]))[0]))
        preferred = [c for c in usable if c not in (0, top)] or usable
        cases.append((features, scores, image, int(rng.choice(preferred))))
    return cases


def _grad_cam_parts(features, head, image, class_index):
    """(A, sum_k alpha_k A_k, d score / d A) for one image, all (h, w, ...) NumPy."""
    import keras

    from cnnkit.backend import gradient

    a = keras.ops.convert_to_numpy(features(image[None]))
    grads = gradient(lambda t: head(t)[:, class_index], a)
    return a[0], (a * grads.mean(axis=(1, 2), keepdims=True)).sum(-1)[0], grads[0]


def _image_gradient_map(features, head, image, class_index):
    """The map weighted by d score / d image (a mistake that only runs when the image has as
    many channels as there are maps), rectified but not scaled."""
    import keras

    from cnnkit.backend import gradient

    a = keras.ops.convert_to_numpy(features(image[None]))[0]
    x_grads = gradient(lambda x: head(features(x))[:, class_index], image[None])[0]
    return np.maximum(a @ x_grads.mean(axis=(0, 1)), 0)


def _norm(heat):
    with np.errstate(invalid="ignore", divide="ignore"):  # a mistake's map may be all zero
        return heat / heat.max()


def _grad_cam_hint(got, features, head, image, class_index, want):
    from cnnkit.backend import gradient

    a, raw, grads = _grad_cam_parts(features, head, image, class_index)
    h, w, k = a.shape
    if got.shape != want.shape:
        if h != w and got.shape == (w, h):
            return ("the map is (h, w) like the feature maps, height first; yours came out "
                    "transposed")
        if got.shape == (1, h, w):
            return "drop the batch axis: return the (h, w) map of the one image"
        if got.shape == image.shape[:2]:
            return ("return the map at the feature maps' resolution (h, w); it is resized to "
                    "the image only to draw it")
        if got.shape == (k,) or got.shape == (1, k):
            return "those are the weights alpha_k; return the map sum_k alpha_k A_k"
        if got.shape in ((h, w, k), (1, h, w, k)):
            return "sum the weighted maps over k (the channel axis) into one (h, w) map"
        return f"return one value per position of the feature maps, shape {(h, w)}"
    relu, alpha = np.maximum(raw, 0), grads.mean(axis=(0, 1))
    per_class = []
    for other in range(int(head.output.shape[-1])):
        if other != class_index:
            _, other_raw, _ = _grad_cam_parts(features, head, image, other)
            per_class.append((_norm(np.maximum(other_raw, 0)),
                              f"differentiate the score of class_index ({class_index}), "
                              f"head(maps)[:, class_index], not class {other}"))
    all_scores = gradient(head, a[None])[0]  # gradient() sums whatever f returns
    variants = [
        (_norm(raw), "apply a ReLU to the weighted sum before scaling: Grad-CAM keeps only the "
                     "locations whose maps raise the class score"),
        (_norm(np.abs(raw)), "a ReLU, not the absolute value: evidence against the class "
                             "(negative values) must not count as evidence for it"),
        (_norm(np.maximum((grads * a).sum(-1), 0)),
         "average each map's gradient over its positions first: alpha_k = mean over height and "
         "width of d score / d A_k, one weight per map, not one per pixel"),
        (_norm(np.maximum(a @ np.maximum(grads, 0).mean(axis=(0, 1)), 0)),
         "the ReLU goes on the weighted sum of the maps, not on the gradients"),
        (_norm(np.maximum(grads.mean(-1) * a.sum(-1), 0)),
         "average the gradient over the spatial axes (height and width: axes 1 and 2 of the "
         "(1, h, w, k) gradient), not over the maps (the last axis)"),
        *per_class,
        (_norm(np.maximum(a @ all_scores.mean(axis=(0, 1)), 0)),
         "differentiate the one score of class_index (head(maps)[:, class_index]); "
         "differentiating head(maps) itself adds up the scores of every class"),
        (relu, "scale the map by its maximum (divide by heat.max()), so its strongest "
               "location is 1"),
        (relu / relu.sum(), "divide by the maximum, not the sum"),
        (relu / np.sqrt(np.sum(relu ** 2)), "divide by the maximum, not the L2 norm"),
        (relu / np.abs(raw).max(), "divide by the maximum of the rectified map, not of its "
                                   "absolute values"),
        ((relu - relu.min()) / (relu.max() - relu.min()),
         "divide by the maximum only: subtracting the minimum sends the weakest location to 0 "
         "although it still raises the class score"),
    ]
    if h == w:
        variants.append((want.T, "the map is (h, w) like the feature maps, height first; "
                                 "yours came out transposed"))
    if image.shape[-1] == k:
        variants.append((_norm(_image_gradient_map(features, head, image, class_index)),
                         "take the gradient with respect to the feature maps A (the head's "
                         "input), not the image"))
    return one_of(got, variants, "Grad-CAM is ReLU(sum_k alpha_k A_k) with alpha_k the mean "
                                 "of d score / d A_k over height and width, divided by its "
                                 "maximum", rtol=1e-3, atol=1e-4)


def check_grad_cam(grad_cam):
    """`grad_cam(features, head, image, class_index)` -> Grad-CAM's (h, w) map for one image,
    rectified and divided by its maximum. `features` maps images to the maps A (batch, h, w,
    k), `head` maps A to class scores. Checked against the gradient taken here on six random
    networks (a dense head, a 1x1-convolution head, a global-average-pooling head; square and
    oblong maps; one whose map is positive everywhere), classes other than 0 and the top one."""
    grad_cam = student(grad_cam)

    def run():
        cases = _cases()
        for features, head, image, class_index in cases:
            _, raw, _ = _grad_cam_parts(features, head, image, class_index)
            want = _norm(np.maximum(raw, 0))
            call = (f"grad_cam(features, head, image of shape {image.shape}, "
                    f"class_index={class_index})")
            got = array(grad_cam(features, head, image.copy(), class_index), call)
            expect(got.shape == want.shape,
                   f"{call} returned shape {got.shape}, expected {want.shape}: "
                   f"{_grad_cam_hint(got, features, head, image, class_index, want)}.")
            expect(np.allclose(got, want, rtol=1e-3, atol=1e-4),
                   f"{call} differs from Grad-CAM (largest difference "
                   f"{np.max(np.abs(np.nan_to_num(got - want, nan=np.inf))):.3g}): "
                   f"{_grad_cam_hint(got, features, head, image, class_index, want)}.")
        return (f"{len(cases)} random networks agree with Grad-CAM computed here: dense, 1x1 "
                "and global-pooling heads, square and oblong maps, classes other than the top.")

    return grade("grad_cam", run)
