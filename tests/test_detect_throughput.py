"""Detection throughput with one and two worker processes on real photos, and the perf figure's folder rule."""

import pytest

from benchmark import config
from benchmark.data.align import Geometry
from benchmark.data.throughput import detect_throughput
from benchmark.perf import detection_figure, detection_folder


@pytest.mark.slow
def test_detect_throughput_times_one_and_two_workers_on_the_same_photos(real_data_dir):
    found = detect_throughput(real_data_dir / "photos", Geometry(112), images=6, workers=2)
    assert found["images"] == 6 and found["workers"] == 2 and 0 < found["usable"] <= 6
    assert found["images_per_second"] > 0 and found["speedup"] == pytest.approx(
        found["images_per_second"] / found["one_worker_images_per_second"])


def test_a_folder_without_photos_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no photos in identity sub-folders"):
        detect_throughput(tmp_path, Geometry(112))


def test_the_figure_runs_on_the_training_folder_else_a_benchmark_folder_else_says_why_not():
    synthetic = config.build(config.Params, {})
    assert detection_folder(synthetic) is None
    assert detection_figure(synthetic, Geometry(64))["value"] is None
    orl = config.build(config.Params, {"data": {"benchmarks": [{"name": "heldout", "format": "split"},
                                                               {"name": "orl", "format": "folder", "path": "x/orl"}]}})
    assert detection_folder(orl) == "x/orl"
    own = config.build(config.Params, {"data": {"source": "folder", "path": "x/mine"}})
    assert detection_folder(own) == "x/mine"
