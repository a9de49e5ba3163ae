"""Mean average precision of object detections: COCO's definition (pycocotools' COCOeval,
which torchmetrics' ``MeanAveragePrecision(iou_type="bbox")`` runs).

For each class and IoU threshold t, the detections of every image are matched greedily,
by decreasing score, each to the unmatched ground-truth box of that class it overlaps
most, if IoU >= t; a matched detection is a true positive, an unmatched one a false
positive. Sorting all images' detections by score gives a precision-recall curve; its
precision is made non-increasing (each point takes the best precision at any higher
recall) and read at the 101 recalls 0, 0.01, ..., 1 (0 beyond the highest recall
reached). AP is the mean of those 101 values; ``map`` averages AP over the thresholds
0.50:0.05:0.95 and over the classes that have ground truth. At most 100 detections of
each class per image count (the top-scoring ones).

``map_small`` / ``medium`` / ``large`` repeat this with only the objects of area < 32^2,
32^2 .. 96^2 and > 96^2 pixels: ground truth outside the range is ignored (a detection
matched to it counts neither way), and so is an unmatched detection outside it.
``mar_1`` / ``10`` / ``100`` are the recall reached with at most 1, 10, 100 detections per
image and class, averaged over thresholds and classes (``mar_small`` ... with 100).
A value that is undefined (no ground truth at all, say) is -1, as in COCO.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .tensor import Tensor

__all__ = ["mean_average_precision"]

AREA_RANGES = {
    "all": (0.0, 1e5**2),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}
MAX_DETECTIONS = (1, 10, 100)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def _array(value, dtype) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.data
    return np.asarray(backend.as_numpy(value), dtype=dtype)


def _boxes_of(image: dict, name: str, i: int, keys) -> dict:
    missing = [k for k in keys if k not in image]
    if missing:
        raise KeyError(f"mean_average_precision: {name}[{i}] has no {missing} (keys {list(image)})")
    out = {"boxes": _array(image["boxes"], np.float64).reshape(-1, 4)}
    out["labels"] = _array(image["labels"], np.int64).reshape(-1)
    if "scores" in keys:
        out["scores"] = _array(image["scores"], np.float64).reshape(-1)
    if any(len(v) != len(out["boxes"]) for v in out.values()):
        shapes = {k: tuple(np.shape(image[k])) for k in keys}
        raise ValueError(f"mean_average_precision: {name}[{i}] has mismatched lengths {shapes}")
    return out


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _iou(dt: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(D, 4), (G, 4) xyxy -> (D, G), the formula of ``md.vision.ops.box_iou`` on arrays."""
    lt = np.maximum(dt[:, None, :2], gt[None, :, :2])
    rb = np.minimum(dt[:, None, 2:], gt[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (_area(dt)[:, None] + _area(gt)[None, :] - inter)


def _match_image(dt_boxes, dt_scores, gt_boxes, thresholds, area_range):
    """Greedy matching in one image for one class (COCOeval.evaluateImg).

    Returns the scores of the (at most 100) detections by decreasing score, whether each
    is matched at each threshold (T, D), whether it is ignored (T, D), and the number
    of ground-truth boxes not ignored."""
    order = np.argsort(-dt_scores, kind="stable")[: MAX_DETECTIONS[-1]]
    dt_boxes, dt_scores = dt_boxes[order], dt_scores[order]
    lo, hi = area_range
    gt_area = _area(gt_boxes)
    gt_ignored = (gt_area < lo) | (gt_area > hi)
    ious = _iou(dt_boxes, gt_boxes)
    n_t, n_d = len(thresholds), len(dt_boxes)
    matched = np.zeros((n_t, n_d), dtype=bool)
    ignored = np.zeros((n_t, n_d), dtype=bool)
    for t, threshold in enumerate(thresholds):
        taken = np.zeros(len(gt_boxes), dtype=bool)
        for d in range(n_d):
            # the unmatched ground truth of highest IoU >= threshold (the last of equals),
            # preferring one that is not ignored
            ok = ~taken & (ious[d] >= min(threshold, 1 - 1e-10))
            for group in (ok & ~gt_ignored, ok & gt_ignored):
                if group.any():
                    candidates = np.flatnonzero(group)
                    best = candidates[ious[d, candidates] == ious[d, candidates].max()][-1]
                    taken[best], matched[t, d], ignored[t, d] = True, True, gt_ignored[best]
                    break
    dt_area = _area(dt_boxes)
    ignored |= ~matched & ((dt_area < lo) | (dt_area > hi))[None, :]
    return dt_scores, matched, ignored, int(np.sum(~gt_ignored))


def _precision_recall(per_image, max_det: int, n_thresholds: int):
    """The interpolated precision (T, 101) and the final recall (T,) of one class, from
    every image's matches (COCOeval.accumulate), or None without ground truth."""
    n_gt = sum(n for *_, n in per_image)
    if n_gt == 0:
        return None
    scores = np.concatenate([s[:max_det] for s, *_ in per_image])
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([m[:, :max_det] for _, m, _, _ in per_image], axis=1)[:, order]
    ignored = np.concatenate([g[:, :max_det] for _, _, g, _ in per_image], axis=1)[:, order]
    tp = np.cumsum(matched & ~ignored, axis=1).astype(np.float64)
    fp = np.cumsum(~matched & ~ignored, axis=1).astype(np.float64)
    precision = np.zeros((n_thresholds, len(RECALL_POINTS)))
    recall = np.zeros(n_thresholds)
    n_d = tp.shape[1]
    if n_d == 0:  # ground truth but no detection: precision and recall 0
        return precision, recall
    for t in range(n_thresholds):
        rc = tp[t] / n_gt
        pr = tp[t] / (tp[t] + fp[t] + np.spacing(1))
        recall[t] = rc[-1]
        envelope = np.maximum.accumulate(pr[::-1])[::-1]  # best precision at recall >= r
        at = np.searchsorted(rc, RECALL_POINTS, side="left")
        precision[t] = np.where(at < n_d, envelope[np.minimum(at, n_d - 1)], 0.0)
    return precision, recall


def _mean(values) -> float:
    values = np.asarray(values)
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else -1.0


def mean_average_precision(preds, targets, iou_thresholds=None) -> dict[str, float]:
    """COCO mAP of detections ``preds`` against ground truth ``targets``.

    preds: a list, one per image, of dicts with ``boxes`` (K, 4) xyxy, ``scores`` (K,)
    and ``labels`` (K,); targets: a list of dicts with ``boxes`` and ``labels``
    (Tensors, arrays or lists). ``iou_thresholds`` defaults to 0.50, 0.55, ..., 0.95.
    Returns torchmetrics' keys: ``map``, ``map_50``, ``map_75``, ``map_small``,
    ``map_medium``, ``map_large``, ``mar_1``, ``mar_10``, ``mar_100``, ``mar_small``,
    ``mar_medium``, ``mar_large`` (floats; -1 where undefined, e.g. ``map_50`` when 0.5
    is not a threshold).
    """
    if len(preds) != len(targets):
        raise ValueError(
            f"mean_average_precision: {len(preds)} predictions but {len(targets)} targets; "
            "give one dict per image in each"
        )
    if iou_thresholds is None:
        thresholds = np.linspace(0.5, 0.95, 10)
    else:
        thresholds = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
    preds = [_boxes_of(p, "preds", i, ("boxes", "scores", "labels")) for i, p in enumerate(preds)]
    targets = [_boxes_of(t, "targets", i, ("boxes", "labels")) for i, t in enumerate(targets)]
    classes = np.union1d(
        np.concatenate([p["labels"] for p in preds] + [np.zeros(0, np.int64)]),
        np.concatenate([t["labels"] for t in targets] + [np.zeros(0, np.int64)]),
    )
    n_t, n_k, n_a, n_m = len(thresholds), len(classes), len(AREA_RANGES), len(MAX_DETECTIONS)
    precision = -np.ones((n_t, len(RECALL_POINTS), n_k, n_a, n_m))
    recall = -np.ones((n_t, n_k, n_a, n_m))
    for k, c in enumerate(classes):
        for a, bounds in enumerate(AREA_RANGES.values()):
            per_image = []  # the images with detections or ground truth of class c
            for p, t in zip(preds, targets):
                dt, gt = p["labels"] == c, t["labels"] == c
                if dt.any() or gt.any():
                    boxes, scores = p["boxes"][dt], p["scores"][dt]
                    per_image.append(
                        _match_image(boxes, scores, t["boxes"][gt], thresholds, bounds)
                    )
            for m, max_det in enumerate(MAX_DETECTIONS):
                result = _precision_recall(per_image, max_det, n_t) if per_image else None
                if result is not None:
                    precision[:, :, k, a, m], recall[:, k, a, m] = result

    areas, last = list(AREA_RANGES), n_m - 1

    def ap(area="all", threshold=None):
        p = precision[:, :, :, areas.index(area), last]
        return _mean(p if threshold is None else p[thresholds == threshold])

    def ar(area="all", m=last):
        return _mean(recall[:, :, areas.index(area), m])

    return {
        "map": ap(),
        "map_50": ap(threshold=0.5),
        "map_75": ap(threshold=0.75),
        "map_small": ap("small"),
        "map_medium": ap("medium"),
        "map_large": ap("large"),
        "mar_1": ar(m=0),
        "mar_10": ar(m=1),
        "mar_100": ar(m=2),
        "mar_small": ar("small"),
        "mar_medium": ar("medium"),
        "mar_large": ar("large"),
    }
