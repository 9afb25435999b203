"""The drawn photos."""

import random
from collections import Counter

from demo.images import images_archive


def test_images_archive_plants_gps_and_xmp_in_some_images():
    _, images = images_archive(8, random.Random(7))

    planted = Counter(kind for image in images for kind in image.metadata_planted)
    assert planted["gps"] >= 1 and planted["xmp"] >= 1
    assert len({image.kind for image in images}) == 8
