"""``minideep demo``: recognise the direction of motion in videos with a CNN + LSTM.

The default data is the embedded synthetic set: ``MovingShapes`` clips of a shape moving
left, right, up or down, wrapping around the edges so that no single frame reveals the
direction — only the order of the frames does. The clips are written as real MP4 files
(one folder per class) and read back with ``VideoFolder``, so the demo exercises the
whole path from video files to a trained model.

The model runs a small CNN on every frame and an LSTM over the sequence of frame
features; the last hidden state is classified.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from . import backend, nn
from .data import DataLoader, MovingShapes, VideoFolder
from .data.synthetic import DIRECTIONS
from .nn import functional as F

# The embedded default: sizes chosen so the demo trains in well under two minutes on
# two CPU cores (writing and decoding the videos included).
DEFAULTS = {
    "train_clips": 320,
    "test_clips": 96,
    "frames": 12,
    "size": 32,
    "epochs": 12,
    "batch_size": 16,
    "lr": 3e-3,
}

# ``--fast``: a tiny setting that checks the whole path in seconds (tests use it).
FAST_SIZES = {"train_clips": 24, "test_clips": 12, "frames": 6, "size": 16, "epochs": 1}


class FrameCNN(nn.Module):
    """Per-frame features: ``(N, C, H, W) -> (N, features)``."""

    def __init__(self, in_channels: int, size: int, features: int = 64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * (size // 4) ** 2, features), nn.ReLU(),
        )  # fmt: skip

    def forward(self, frames):
        return self.body(frames)


class ActionRecognizer(nn.Module):
    """CNN on each frame, LSTM over time: ``(N, T, C, H, W) -> (N, n_classes)`` logits."""

    def __init__(self, in_channels: int, size: int, n_classes: int, hidden: int = 64):
        super().__init__()
        self.cnn = FrameCNN(in_channels, size, features=64)
        self.lstm = nn.LSTM(64, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, clips):
        n, t = clips.shape[:2]
        features = self.cnn(clips.reshape(n * t, *clips.shape[2:])).reshape(n, t, -1)
        outputs, _ = self.lstm(features)
        return self.head(outputs[:, -1])


def synthetic_folders(data_root: Path, seed: int, sizes: dict) -> tuple[Path, Path, list[str]]:
    """Write the synthetic train and test sets as MP4 files (reused when already there)."""
    config = {k: sizes[k] for k in ("train_clips", "test_clips", "frames", "size")}
    config["seed"] = seed
    stamp = data_root / "config.json"
    train_dir, test_dir = data_root / "train", data_root / "test"
    common = dict(frames=config["frames"], size=config["size"], channels=1, label="direction")
    classes = list(DIRECTIONS)  # the classes of label="direction" with the default directions
    if stamp.exists() and json.loads(stamp.read_text()) == config:
        return train_dir, test_dir, classes
    data_root.mkdir(parents=True, exist_ok=True)
    MovingShapes(n_clips=config["train_clips"], seed=seed, **common).to_folder(train_dir)
    MovingShapes(n_clips=config["test_clips"], seed=seed + 10_000, **common).to_folder(test_dir)
    stamp.write_text(json.dumps(config))
    return train_dir, test_dir, classes


def user_folders(data_dir: Path) -> tuple[Path, Path | None]:
    """A user's ``DIR/<class>/*.mp4`` (or ``DIR/train`` and ``DIR/test``) folders."""
    if not data_dir.is_dir():
        raise FileNotFoundError(f"--data {data_dir}: not a directory")
    if (data_dir / "train").is_dir():
        test = data_dir / "test"
        return data_dir / "train", (test if test.is_dir() else None)
    return data_dir, None


def split(dataset, fraction: float, seed: int):
    """Stratified split of a dataset's indices into (train, test) lists."""
    rng = np.random.default_rng(seed)
    targets = np.asarray(dataset.targets)
    train, test = [], []
    for c in np.unique(targets):
        idx = rng.permutation(np.flatnonzero(targets == c))
        k = max(1, int(round(len(idx) * fraction)))
        test += idx[:k].tolist()
        train += idx[k:].tolist()
    return sorted(train), sorted(test)


def run(
    out_dir: str | Path = "minideep-demo",
    epochs: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    data_dir: str | Path | None = None,
    progress: bool = True,
    sizes: dict | None = None,
    log=print,
) -> dict:
    """Train the action recogniser and write its plots; returns a summary dict."""
    from . import manual_seed, viz
    from .data import Subset
    from .metrics import confusion_matrix
    from .optim import Adam
    from .train import evaluate, fit, predict

    start = time.perf_counter()
    sizes = {**DEFAULTS, **(sizes or {})}
    epochs = sizes["epochs"] if epochs is None else epochs
    device = backend.check_device(device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manual_seed(seed)

    frames, size = sizes["frames"], sizes["size"]
    folder_args = dict(clip_len=frames, size=size, grayscale=True, layout="TCHW")
    if data_dir is None:
        log(f"writing the synthetic MovingShapes videos to {out_dir / 'data'} ...")
        train_dir, test_dir, classes = synthetic_folders(out_dir / "data", seed, sizes)
        train_set = VideoFolder(train_dir, classes=classes, **folder_args)
        test_set = VideoFolder(test_dir, classes=classes, **folder_args)
    else:
        train_dir, test_dir = user_folders(Path(data_dir))
        full = VideoFolder(train_dir, sampling="center", **folder_args)
        classes = full.classes
        if test_dir is None:
            train_idx, test_idx = split(full, 0.25, seed)
            train_set, test_set = Subset(full, train_idx), Subset(full, test_idx)
        else:
            train_set = full
            test_set = VideoFolder(test_dir, classes=classes, **folder_args)
    log(f"decoding {len(train_set)} training and {len(test_set)} test clips ...")
    for ds in (train_set, test_set):
        getattr(ds, "dataset", ds).preload()

    train_loader = DataLoader(train_set, batch_size=sizes["batch_size"], shuffle=True)
    test_loader = DataLoader(test_set, batch_size=64)
    model = ActionRecognizer(1, size, len(classes))
    optimizer = Adam(model.parameters(), lr=sizes["lr"])
    log(f"training a CNN + LSTM on {device} for {epochs} epochs ({', '.join(classes)}) ...")
    history = fit(
        model, train_loader, F.cross_entropy, optimizer, epochs,
        val_loader=test_loader, device=device, progress=progress,
    )  # fmt: skip
    result = evaluate(model, test_loader, F.cross_entropy, device=device)
    predicted = predict(model, test_loader, device=device)
    true = np.asarray([test_set[i][1] for i in range(len(test_set))])
    cm = confusion_matrix(true, predicted, num_classes=len(classes))

    plots = {
        "curves": viz.plot_history(history, path=out_dir / "training_curves.png"),
        "confusion": viz.plot_confusion_matrix(cm, classes, path=out_dir / "confusion_matrix.png"),
        "clips": plot_test_clips(test_set, true, predicted, classes, out_dir / "test_clips.png"),
    }
    for fig in plots.values():
        fig.clf()
    seconds = time.perf_counter() - start
    return {
        "accuracy": float(result["accuracy"]),
        "loss": float(result["loss"]),
        "seconds": seconds,
        "epochs": len(history.get("train_loss", [])),
        "classes": classes,
        "plots": [
            out_dir / "training_curves.png",
            out_dir / "confusion_matrix.png",
            out_dir / "test_clips.png",
        ],
        "history": history,
    }


def plot_test_clips(dataset, true, predicted, classes, path, n_clips: int = 6, n_frames: int = 6):
    """A strip of frames from test clips, each row titled with the true and predicted class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = _clips_to_show(np.asarray(true), np.asarray(predicted), n_clips)
    rows = len(chosen)
    fig, axes = plt.subplots(rows, n_frames, figsize=(1.3 * n_frames, 1.45 * rows), squeeze=False)
    for r, index in enumerate(chosen):
        clip, _ = dataset[index]
        step = max(1, clip.shape[0] // n_frames)
        for c in range(n_frames):
            ax = axes[r, c]
            frame = np.asarray(clip[min(c * step, clip.shape[0] - 1), 0])
            ax.imshow(frame, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        ok = true[index] == predicted[index]
        axes[r, 0].set_title(
            f"clip {index}: true {classes[true[index]]}, predicted {classes[predicted[index]]}",
            loc="left", fontsize=8, color="green" if ok else "red",
        )  # fmt: skip
    fig.suptitle("Test clips (frames left to right in time)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return fig


def _clips_to_show(true: np.ndarray, predicted: np.ndarray, n: int) -> list[int]:
    """Mistakes first (at most half the rows), then one clip of each class in turn."""
    chosen = [int(i) for i in np.flatnonzero(true != predicted)[: n // 2]]
    by_class = [np.flatnonzero(true == c).tolist() for c in np.unique(true)]
    while len(chosen) < min(n, len(true)):
        for indices in by_class:
            extra = [i for i in indices if i not in chosen][:1]
            chosen += extra
            if len(chosen) == n:
                break
    return chosen
