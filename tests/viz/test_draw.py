import numpy as np

from darkyolo.viz.draw import class_colour, draw_detections, label_text


def test_draws_boxes_and_labels_on_a_copy():
    image = np.zeros((120, 160, 3), np.uint8)
    out = draw_detections(
        image, np.array([[20.0, 40.0, 100.0, 110.0]]), np.array([3]), np.array([0.87]), ["a"] * 5
    )
    assert image.max() == 0  # the input is untouched
    colour = np.array(class_colour(3))
    assert np.all(out[75, 20] == colour)  # left edge of the box
    assert np.all(out[40:110, 50:70][20:50, 5:15] == 0)  # inside stays clear
    assert np.any(np.all(out[25:40, 20:60] == colour, axis=-1))  # filled label above the box


def test_labels_and_edge_cases():
    assert label_text(1, 0.5, ["cat", "dog"]) == "dog 0.50"
    assert label_text(7, None, ["cat"]) == "class 7"
    image = np.full((30, 40, 3), 255, np.uint8)
    same = draw_detections(image, np.zeros((0, 4)), np.zeros((0,), int))
    assert np.array_equal(same, image)
    out = draw_detections(image, np.array([[-50.0, -50.0, 500.0, 500.0]]), np.array([0]))
    assert out.shape == image.shape and not np.array_equal(out, image)
