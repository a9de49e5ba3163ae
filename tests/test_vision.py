"""md.vision against torchvision (box ops, losses, RoIAlign, the reference models) and
md.metrics.mean_average_precision against torchmetrics; nms and RoIAlign's border rules
against plain loops written here."""

import importlib

import numpy as np
import pytest

import minideep as md
from minideep.vision import models, ops


def _import_torchvision():
    """torchvision, or a skip. Its compiled ops need a CUDA build of torch; with the CPU
    build the import fails registering their fake kernels, so ``register_fake`` is a
    no-op decorator while it imports (its Python models and pure-torch ops then work;
    ``torchvision.ops.nms`` does not)."""
    torch = pytest.importorskip("torch")
    original = torch.library.register_fake
    torch.library.register_fake = lambda *args, **kwargs: lambda fn: fn
    try:
        import torchvision
    except Exception as err:  # noqa: BLE001 (any failure means: skip)
        pytest.skip(f"torchvision does not import: {err}")
    finally:
        torch.library.register_fake = original
    return torch, torchvision


def _import_torchmetrics_map():
    _import_torchvision()  # torchmetrics imports torchvision when it is installed
    pytest.importorskip("pycocotools")
    detection = pytest.importorskip("torchmetrics.detection")
    return detection.MeanAveragePrecision


def _random_boxes(rng, n, scale=10.0, integer=False):
    corner = rng.uniform(0, scale, (n, 2))
    size = rng.uniform(0.5, scale / 2, (n, 2))
    if integer:  # shared coordinates: ties in the max/min of the intersection
        corner, size = np.round(corner), np.round(size) + 1
    return np.concatenate([corner, corner + size], 1)


def _both(array):
    """The same float64 array as a minideep and a torch leaf that require grad."""
    import torch

    return (
        md.tensor(array, dtype=md.float64, requires_grad=True),
        torch.tensor(array, dtype=torch.float64, requires_grad=True),
    )


def _check_against_torch(md_fn, torch_fn, arrays, seed=0):
    """Same outputs, and same gradients of every input for a random upstream gradient."""
    import torch

    pairs = [_both(a) for a in arrays]
    out = md_fn(*(m for m, _ in pairs))
    ref = torch_fn(*(t for _, t in pairs))
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    upstream = np.random.default_rng(seed).standard_normal(ref.shape)
    out.backward(md.tensor(upstream, dtype=md.float64))
    ref.backward(torch.tensor(upstream))
    for m, t in pairs:
        np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------- box ops


@pytest.mark.parametrize("integer", [False, True], ids=["random", "integer coordinates"])
@pytest.mark.parametrize("name", ["box_iou", "generalized_box_iou"])
def test_pairwise_box_ops_match_torchvision(name, integer):
    _, tv = _import_torchvision()
    rng = np.random.default_rng(1)
    a, b = _random_boxes(rng, 5, integer=integer), _random_boxes(rng, 4, integer=integer)
    _check_against_torch(getattr(ops, name), getattr(tv.ops, name), [a, b])


def test_box_iou_with_leading_dims_and_formats_matches_torchvision():
    _, tv = _import_torchvision()
    rng = np.random.default_rng(2)
    a = _random_boxes(rng, 6).reshape(2, 3, 4)
    b = _random_boxes(rng, 8).reshape(2, 4, 4)
    _check_against_torch(ops.box_iou, tv.ops.box_iou, [a, b])
    for fmt in ("xywh", "cxcywh"):
        a2, b2 = rng.uniform(1, 5, (3, 4)), rng.uniform(1, 5, (2, 4))
        _check_against_torch(
            lambda x, y, f=fmt: ops.box_iou(x, y, fmt=f),
            lambda x, y, f=fmt: tv.ops.box_iou(x, y, fmt=f),
            [a2, b2],
        )


@pytest.mark.parametrize("fmt", ["xyxy", "xywh", "cxcywh"])
def test_box_area_matches_torchvision(fmt):
    _, tv = _import_torchvision()
    boxes = _random_boxes(np.random.default_rng(3), 6)
    _check_against_torch(
        lambda b: ops.box_area(b, fmt=fmt), lambda b: tv.ops.box_area(b, fmt=fmt), [boxes]
    )


@pytest.mark.parametrize("in_fmt", ["xyxy", "xywh", "cxcywh"])
@pytest.mark.parametrize("out_fmt", ["xyxy", "xywh", "cxcywh"])
def test_box_convert_matches_torchvision(in_fmt, out_fmt):
    _, tv = _import_torchvision()
    boxes = np.random.default_rng(4).uniform(1, 5, (2, 3, 4))
    _check_against_torch(
        lambda b: ops.box_convert(b, in_fmt, out_fmt),
        lambda b: tv.ops.box_convert(b, in_fmt, out_fmt),
        [boxes],
    )


def test_box_convert_round_trip_and_bad_format():
    boxes = md.tensor(_random_boxes(np.random.default_rng(5), 4), dtype=md.float64)
    back = ops.box_convert(ops.box_convert(boxes, "xyxy", "cxcywh"), "cxcywh", "xyxy")
    np.testing.assert_allclose(back.numpy(), boxes.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="xyxx"):
        ops.box_convert(boxes, "xyxx", "xyxy")
    with pytest.raises(ValueError, match=r"\(4, 3\)"):
        ops.box_iou(boxes[:, :3], boxes)


# ----------------------------------------------------------------------- losses


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("alpha, gamma", [(0.25, 2), (-1, 1.5), (0.6, 0)])
def test_sigmoid_focal_loss_matches_torchvision(alpha, gamma, reduction):
    torch, tv = _import_torchvision()
    rng = np.random.default_rng(6)
    logits = 3 * rng.standard_normal((4, 5))
    targets = (rng.random((4, 5)) < 0.3).astype(np.float64)
    _check_against_torch(
        lambda x: ops.sigmoid_focal_loss(
            x, md.tensor(targets, dtype=md.float64), alpha, gamma, reduction
        ),
        lambda x: tv.ops.sigmoid_focal_loss(x, torch.tensor(targets), alpha, gamma, reduction),
        [logits],
    )


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_generalized_box_iou_loss_matches_torchvision(reduction):
    _, tv = _import_torchvision()
    rng = np.random.default_rng(7)
    a, b = _random_boxes(rng, 6), _random_boxes(rng, 6)  # some overlap, some do not
    _check_against_torch(
        lambda x, y: ops.generalized_box_iou_loss(x, y, reduction),
        lambda x, y: tv.ops.generalized_box_iou_loss(x, y, reduction),
        [a, b],
    )


def test_loss_reduction_is_checked():
    x = md.zeros(3, 4)
    with pytest.raises(ValueError, match="'avg'"):
        ops.sigmoid_focal_loss(x, x, reduction="avg")


# ----------------------------------------------------------------------- NMS


def _nms_reference(boxes, scores, threshold):
    """torchvision's CPU kernel, as plain loops: a stable sort by decreasing score, then
    every kept box suppresses the later boxes overlapping it by IoU > threshold."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # sorted() is stable
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    suppressed, keep = [False] * len(scores), []
    for a, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        for j in order[a + 1 :]:
            w = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            h = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            inter = w * h
            if inter / (area[i] + area[j] - inter) > threshold:
                suppressed[j] = True
    return keep


@pytest.mark.parametrize("threshold", [0.1, 0.3, 0.5, 0.7])
@pytest.mark.parametrize("seed", range(3))
def test_nms_matches_the_greedy_reference(seed, threshold):
    rng = np.random.default_rng(seed)
    boxes = _random_boxes(rng, 40, scale=20.0)
    scores = np.round(rng.random(40), 1)  # many equal scores: the stable order decides
    keep = ops.nms(md.tensor(boxes, dtype=md.float64), md.tensor(scores), threshold)
    assert keep.dtype == np.int64
    assert keep.numpy().tolist() == _nms_reference(boxes, scores, threshold)


def test_nms_of_no_boxes_and_bad_shapes():
    keep = ops.nms(md.zeros(0, 4), md.zeros(0), 0.5)
    assert keep.shape == (0,) and keep.dtype == np.int64
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(2,\)"):
        ops.nms(md.zeros(3, 4), md.zeros(2), 0.5)


@pytest.mark.parametrize("seed", range(3))
def test_batched_nms_is_nms_within_each_class(seed):
    rng = np.random.default_rng(seed)
    boxes = _random_boxes(rng, 30, scale=15.0)
    scores, classes = rng.random(30), rng.integers(0, 3, 30)
    kept = []
    for c in range(3):
        members = np.flatnonzero(classes == c)
        kept += [members[i] for i in _nms_reference(boxes[members], scores[members], 0.4)]
    expected = sorted(kept, key=lambda i: -scores[i])
    keep = ops.batched_nms(md.tensor(boxes), md.tensor(scores), md.tensor(classes), 0.4)
    assert keep.numpy().tolist() == expected
    assert ops.batched_nms(md.zeros(0, 4), md.zeros(0), md.zeros(0), 0.4).shape == (0,)


# ----------------------------------------------------------------------- RoIAlign


def _bilinear(image, y, x):
    """torchvision's bilinear_interpolate (roi_align_kernel.cpp) at one point."""
    _, height, width = image.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return np.zeros(image.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_high = y_low = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_high = x_low = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    return (
        hy * hx * image[:, y_low, x_low]
        + hy * lx * image[:, y_low, x_high]
        + ly * hx * image[:, y_high, x_low]
        + ly * lx * image[:, y_high, x_high]
    )


def _roi_align_reference(x, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """torchvision's roi_align forward kernel as plain loops."""
    ph_n, pw_n = output_size
    out = np.zeros((len(rois), x.shape[1], ph_n, pw_n))
    offset = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(rois):
        start_w, start_h = x1 * spatial_scale - offset, y1 * spatial_scale - offset
        roi_w = x2 * spatial_scale - offset - start_w
        roi_h = y2 * spatial_scale - offset - start_h
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / ph_n, roi_w / pw_n
        grid_h = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_h / ph_n))
        grid_w = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_w / pw_n))
        count = max(grid_h * grid_w, 1)
        for ph in range(ph_n):
            for pw in range(pw_n):
                total = np.zeros(x.shape[1])
                for iy in range(grid_h):
                    yy = start_h + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                    for ix in range(grid_w):
                        xx = start_w + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                        total += _bilinear(x[int(b)], yy, xx)
                out[k, :, ph, pw] = total / count
    return out


ROI_SETTINGS = [  # output_size, spatial_scale, sampling_ratio, aligned
    ((3, 3), 1.0, -1, False),
    ((2, 4), 0.5, 2, False),
    ((3, 2), 1.0, -1, True),
    ((4, 4), 0.25, 3, True),
]


def _inside_rois(rng, k, n, size, scale):
    """RoIs whose sampling points all lie within [-1, size] on the feature map (torchvision's
    Python roi_align, the one that runs without its compiled ops, has no border rule)."""
    corner = rng.uniform(0, 0.6 * size / scale, (k, 2))
    extent = rng.uniform(0.5, 0.35 * size / scale, (k, 2))
    return np.concatenate([rng.integers(0, n, (k, 1)), corner, corner + extent], 1)


@pytest.mark.parametrize("output_size, spatial_scale, sampling_ratio, aligned", ROI_SETTINGS)
def test_roi_align_matches_torchvision(output_size, spatial_scale, sampling_ratio, aligned):
    torch, tv = _import_torchvision()
    # the eager Python roi_align (functools.wraps keeps it under the torch.compile hook)
    tv_roi_align = importlib.import_module("torchvision.ops.roi_align")._roi_align.__wrapped__
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 10, 12))
    rois = _inside_rois(rng, 5, 2, 10, spatial_scale)
    _check_against_torch(
        lambda t: ops.roi_align(
            t,
            md.tensor(rois, dtype=md.float64),
            output_size,
            spatial_scale,
            sampling_ratio,
            aligned,
        ),
        lambda t: tv_roi_align(
            t, torch.tensor(rois), spatial_scale, *output_size, sampling_ratio, aligned
        ),
        [x],
    )


@pytest.mark.parametrize("output_size, spatial_scale, sampling_ratio, aligned", ROI_SETTINGS)
def test_roi_align_border_rules_match_the_kernel(
    output_size, spatial_scale, sampling_ratio, aligned
):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 2, 7, 9))
    rois = np.array(
        [
            [0, -6.0, -5.0, 3.0, 4.0],  # partly beyond the top-left: samples < -1 count 0
            [1, 5.0, 3.0, 13.0, 11.0],  # past the bottom-right edge
            [1, 2.0, 2.0, 2.2, 2.1],  # smaller than a pixel
            [0, 4.0, 4.0, 3.0, 3.0],  # inverted
            [1, -3.0, -3.0, 40.0, 30.0],  # larger than the map
        ]
    )
    rois[:, 1:] /= spatial_scale  # the same boxes on the feature map
    out = ops.roi_align(
        md.tensor(x, dtype=md.float64),
        md.tensor(rois, dtype=md.float64),
        output_size,
        spatial_scale,
        sampling_ratio,
        aligned,
    )
    expected = _roi_align_reference(x, rois, output_size, spatial_scale, sampling_ratio, aligned)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-14)


def test_roi_align_backward_is_the_adjoint_and_boxes_may_be_a_list():
    rng = np.random.default_rng(10)
    x = md.tensor(rng.standard_normal((2, 3, 6, 6)), dtype=md.float64, requires_grad=True)
    boxes = [md.tensor([[0.5, 0.5, 4.0, 5.0]]), md.tensor([[-2.0, 1.0, 7.5, 3.0], [1, 1, 2, 2]])]
    rois = md.tensor([[0, 0.5, 0.5, 4.0, 5.0], [1, -2.0, 1.0, 7.5, 3.0], [1, 1, 1, 2, 2]])
    out = ops.roi_align(x, boxes, 2, sampling_ratio=2, aligned=True)
    same = ops.roi_align(x, rois, 2, sampling_ratio=2, aligned=True)
    np.testing.assert_array_equal(out.numpy(), same.numpy())
    g = rng.standard_normal(out.shape)
    out.backward(md.tensor(g, dtype=md.float64))
    # <g, S x> = <S^T g, x>
    np.testing.assert_allclose(np.sum(g * out.numpy()), np.sum(x.grad.numpy() * x.numpy()))


def test_roi_align_float32_and_bad_boxes():
    x = md.randn(1, 2, 5, 5)
    out = ops.roi_align(x, md.tensor([[0, 1.0, 1.0, 3.0, 4.0]]), 2)
    assert out.shape == (1, 2, 2, 2) and out.dtype == np.float32
    with pytest.raises(ValueError, match=r"\(1, 4\)"):
        ops.roi_align(x, md.tensor([[1.0, 1.0, 3.0, 4.0]]), 2)
    with pytest.raises(ValueError, match=r"\(2, 5, 5\)"):
        ops.roi_align(x[0], md.tensor([[0, 1.0, 1.0, 3.0, 4.0]]), 2)
    with pytest.raises(ValueError, match=r"\[0, 1\).*\[3.0\]"):
        ops.roi_align(x, md.tensor([[3, 1.0, 1.0, 3.0, 4.0]]), 2)


# ----------------------------------------------------------------------- models

MODELS = [
    ("resnet18", (1, 3, 64, 64)),
    ("r3d_18", (1, 3, 4, 32, 32)),
    ("r2plus1d_18", (1, 3, 4, 32, 32)),
]


def _torchvision_model(tv, name):
    return getattr(tv.models, name, None) or getattr(tv.models.video, name)


@pytest.mark.parametrize("name, shape", MODELS, ids=[n for n, _ in MODELS])
def test_model_loads_torchvision_weights_and_matches(name, shape):
    torch, tv = _import_torchvision()
    torch.manual_seed(0)
    reference = _torchvision_model(tv, name)().double().eval()
    with torch.no_grad():  # non-trivial running statistics
        for m in reference.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    model = getattr(models, name)()
    state = {k: v.numpy() for k, v in reference.state_dict().items()}
    ours = model.state_dict()
    assert list(ours) == list(state)
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in state.items()}
    model.double().load_state_dict(state)
    model.eval()
    x = np.random.default_rng(11).standard_normal(shape)
    with torch.no_grad():
        expected = reference(torch.tensor(x)).numpy()
    out = model(md.tensor(x, dtype=md.float64)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


def test_resnet18_input_gradient_matches_torchvision():
    torch, tv = _import_torchvision()
    reference = tv.models.resnet18(num_classes=7).double().eval()
    model = models.resnet18(num_classes=7)
    model.double().load_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})
    model.eval()
    x = np.random.default_rng(12).standard_normal((2, 3, 32, 32))
    _check_against_torch(model, reference, [x])


@pytest.mark.parametrize("name", ["resnet18", "r3d_18", "r2plus1d_18"])
def test_model_init_is_torchvisions(name):
    md.manual_seed(0)
    model = getattr(models, name)(num_classes=10)
    convs = [m for m in model.modules() if isinstance(m, (md.nn.Conv2d, md.nn.Conv3d))]
    for conv in convs[:3] + convs[-1:]:  # kaiming normal, fan_out, relu gain
        out_channels, kernel = conv.weight.shape[0], np.prod(conv.weight.shape[2:])
        std = np.sqrt(2.0 / (out_channels * kernel))
        assert abs(conv.weight.numpy().std() / std - 1) < 0.1
    fc = model.fc.weight.numpy()
    if name == "resnet18":  # nn.Linear's default: U(-1/sqrt(512), 1/sqrt(512))
        assert np.abs(fc).max() <= 1 / np.sqrt(512)
    else:  # N(0, 0.01), zero bias
        assert abs(fc.std() / 0.01 - 1) < 0.1 and not model.fc.bias.numpy().any()


def test_models_never_download_weights():
    with pytest.raises(ValueError, match="never downloads"):
        models.resnet18(weights="IMAGENET1K_V1")
    with pytest.raises(ValueError, match="never downloads"):
        models.r3d_18(weights="DEFAULT")


# ----------------------------------------------------------------------- mAP


def _detections(seed, n_images=4, n_classes=3, scale=200.0, n_detections=9, n_objects=6):
    """Random ground truth, and detections near it (some of the wrong class) or anywhere;
    float32 boxes, as torchmetrics keeps them."""
    rng = np.random.default_rng(seed)
    preds, targets = [], []
    for _ in range(n_images):
        g = int(rng.integers(0, n_objects))
        gt = _random_boxes(rng, g, scale).astype(np.float32)
        gt_labels = rng.integers(0, n_classes, g)
        d = int(rng.integers(0, n_detections))
        if g:
            src = rng.integers(0, g, d)
            size = np.tile(gt[src, 2:] - gt[src, :2], 2)
            near = gt[src] + 0.1 * rng.standard_normal((d, 4)) * size
            labels = np.where(rng.random(d) < 0.8, gt_labels[src], rng.integers(0, n_classes, d))
        else:
            near, labels = _random_boxes(rng, d, scale), rng.integers(0, n_classes, d)
        anywhere = rng.random(d) < 0.3
        boxes = np.where(anywhere[:, None], _random_boxes(rng, d, scale), near)
        boxes = np.concatenate(
            [np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], 1
        ).clip(0)
        preds.append(
            {
                "boxes": boxes.astype(np.float32),
                "scores": rng.random(d).astype(np.float32),
                "labels": labels,
            }
        )
        targets.append({"boxes": gt, "labels": gt_labels})
    return preds, targets


def _torchmetrics_map(preds, targets, **kwargs):
    MeanAveragePrecision = _import_torchmetrics_map()
    import torch

    # COCO's float64 grids (torchmetrics' defaults are float32-rounded, so 0.6 reads as
    # 0.6000000238 and a recall of exactly 3/5 would miss that point)
    kwargs.setdefault("iou_thresholds", np.linspace(0.5, 0.95, 10).tolist())
    metric = MeanAveragePrecision(
        iou_type="bbox", rec_thresholds=np.linspace(0.0, 1.0, 101).tolist(), **kwargs
    )
    metric.warn_on_many_detections = False  # the 100 per image are what COCO counts
    as_torch = [{k: torch.from_numpy(np.asarray(v)) for k, v in d.items()} for d in preds]
    metric.update(as_torch, [{k: torch.from_numpy(v) for k, v in d.items()} for d in targets])
    return {k: float(v) for k, v in metric.compute().items() if v.numel() == 1}


@pytest.mark.parametrize("seed, scale", [(0, 200.0), (1, 200.0), (2, 300.0), (3, 300.0), (4, 60.0)])
def test_mean_average_precision_matches_torchmetrics(seed, scale):
    preds, targets = _detections(seed, scale=scale)  # small, medium and large objects
    expected = _torchmetrics_map(preds, targets)
    out = md.metrics.mean_average_precision(preds, targets)
    for key, value in out.items():
        assert value == pytest.approx(expected[key], abs=1e-6), key


def test_mean_average_precision_counts_at_most_100_detections_per_image_and_class():
    preds, targets = _detections(5, n_images=2, n_classes=2, n_detections=300, n_objects=40)
    assert max(len(p["boxes"]) for p in preds) > 200
    expected = _torchmetrics_map(preds, targets)
    out = md.metrics.mean_average_precision(preds, targets)
    for key, value in out.items():
        assert value == pytest.approx(expected[key], abs=1e-6), key


def test_mean_average_precision_with_own_thresholds_matches_torchmetrics():
    preds, targets = _detections(20, n_images=6)
    expected = _torchmetrics_map(preds, targets, iou_thresholds=[0.3, 0.5, 0.8])
    out = md.metrics.mean_average_precision(preds, targets, iou_thresholds=[0.3, 0.5, 0.8])
    assert out["map_75"] == -1.0  # 0.75 is not a threshold
    for key, value in out.items():
        assert value == pytest.approx(expected[key], abs=1e-6), key


def _image(boxes, labels, scores=None):
    out = {"boxes": md.tensor(boxes, dtype=md.float64), "labels": md.tensor(labels)}
    if scores is not None:
        out["scores"] = md.tensor(scores)
    return out


def test_mean_average_precision_of_a_perfect_box_is_one():
    box = [[10.0, 10.0, 60.0, 70.0]]  # 3000 px^2: a medium object
    out = md.metrics.mean_average_precision([_image(box, [1], [0.9])], [_image(box, [1])])
    for key in ("map", "map_50", "map_75", "map_medium", "mar_1", "mar_100"):
        assert out[key] == pytest.approx(1.0), key  # precision tp / (tp + fp + 2.2e-16)
    assert out["map_small"] == out["map_large"] == -1.0  # no object of that size


def test_mean_average_precision_of_a_wrong_class_is_zero():
    box = [[10.0, 10.0, 60.0, 70.0]]
    out = md.metrics.mean_average_precision([_image(box, [2], [0.9])], [_image(box, [1])])
    assert out["map"] == out["map_50"] == out["mar_100"] == 0.0


def test_mean_average_precision_counts_a_false_positive_ranked_first():
    # scores 0.9 (a miss) then 0.8 (a hit): precision 1/2 at every recall up to 1
    preds = [_image([[100.0, 100.0, 120.0, 120.0], [0.0, 0.0, 10.0, 10.0]], [0, 0], [0.9, 0.8])]
    out = md.metrics.mean_average_precision(preds, [_image([[0.0, 0.0, 10.0, 10.0]], [0])])
    assert out["map"] == pytest.approx(0.5)
    assert out["mar_1"] == 0.0 and out["mar_10"] == 1.0


def test_mean_average_precision_without_ground_truth_is_undefined():
    out = md.metrics.mean_average_precision(
        [_image([[0, 0, 5.0, 5.0]], [0], [0.5])], [_image(np.zeros((0, 4)), [])]
    )
    assert out["map"] == -1.0
    with pytest.raises(ValueError, match="2 predictions but 1 targets"):
        md.metrics.mean_average_precision([{}, {}], [{}])
