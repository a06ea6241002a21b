"""The labelled image set the demo's visual trunk is pretrained on: labels, framing, seeds."""

import numpy as np
import pytest

from dataset import layout
from synthetic import image_set
from synthetic.image_set import CLUTTER, IMAGE_CLASSES, PLAYER, jittered_box, render_image_set
from synthetic.video import plan_videos


@pytest.fixture(scope="module")
def small_set():
    return render_image_set(seed=3, scenes=22, img_size=32, frames=2)


def test_every_instrument_class_is_drawn_and_labelled(small_set):
    images, labels = small_set
    assert images.dtype == np.uint8 and images.shape[1:] == (3, 32, 32)
    assert labels.shape == (len(images),) and labels.dtype == np.int64
    # Scene i plays class i mod 11, seen in each of its 2 frames.
    counts = np.bincount(labels, minlength=len(IMAGE_CLASSES))
    assert (counts[: len(layout.MUSIC_CLASSES)] >= 4).all()
    assert counts.sum() == len(labels) and labels.max() <= CLUTTER
    assert IMAGE_CLASSES[PLAYER] == "player" and IMAGE_CLASSES[CLUTTER] == "clutter"
    # Crops are pictures, not blank: every crop has some contrast.
    assert (images.reshape(len(images), -1).std(axis=1) > 5).all()


def test_same_seed_same_set_for_any_number_of_workers(small_set):
    images, labels = small_set
    again_images, again_labels = render_image_set(
        seed=3, scenes=22, img_size=32, frames=2, workers=2
    )
    np.testing.assert_array_equal(again_images, images)
    np.testing.assert_array_equal(again_labels, labels)
    other_images, _ = render_image_set(seed=4, scenes=2, img_size=32, frames=2)
    assert not np.array_equal(other_images[:2], images[:2])


def test_scenes_never_draw_a_videos_random_stream():
    seed = 1234
    plans = plan_videos(layout.MUSIC_CLASSES, 3, seed, 20.0, 60.0, 256, 192)
    video_draws = {plan.rng(stream).random() for plan in plans for stream in range(3)}
    scene_draws = {np.random.default_rng([seed, image_set.SEED_TAG, i]).random() for i in range(99)}
    assert not video_draws & scene_draws
    assert image_set.SEED_TAG >= len(layout.MUSIC_CLASSES)  # a video's second seed word: a class id


def test_jittered_box_moves_edges_a_little_and_stays_in_the_frame():
    rng = np.random.default_rng(0)
    box = [200, 20, 256, 180]
    boxes = np.array([jittered_box(box, rng) for _ in range(500)])
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 256).all() and (boxes[:, 3] <= 192).all()
    assert (boxes[:, 2:] > boxes[:, :2]).all()
    shifts = boxes[:, 1] - box[1]  # top edge: 3% of a 160-px height is about 5 px
    assert 3 < shifts.std() < 7 and abs(shifts.mean()) < 1


def test_hidden_share_of_a_clutter_box():
    box = [0, 0, 10, 10]
    assert image_set.hidden_share(box, []) == 0
    assert image_set.hidden_share(box, [[5, 0, 20, 10]]) == 0.5
    assert image_set.hidden_share(box, [[20, 20, 30, 30], [0, 0, 10, 5]]) == 0.5
    assert image_set.hidden_share(box, [[-5, -5, 15, 15]]) == 1
