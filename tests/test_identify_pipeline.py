"""Video identification end to end with a toy embedder; the FAR threshold; evidence; FAISS benchmark."""

import cv2
import numpy as np
import pytest

from benchmark.data.detect import FaceDetector
from benchmark.data.images import resize_face
from benchmark.data.synthetic import Nuisance, identities, render_face
from benchmark.evaluation.verification import roc_points, threshold_at_far
from benchmark.identify import evidence
from benchmark.identify.database import UNKNOWN, IdentityDB, IdentityDBError
from benchmark.identify.pipeline import Embedder, identify_video
from benchmark.identify.quality import NoUsableFrameError
from benchmark.identify.settings import QualityConfig
from benchmark.identify.throughput import search_throughput

CROPPED = QualityConfig(assume_cropped=True)


def projection_embedder(dim: int = 16, size: int = 32, seed: int = 0, model_id: str = "proj-v1") -> Embedder:
    """A fixed random projection of mean-centred grey pixels, L2-normalized: deterministic, no training."""
    weights = np.random.default_rng(seed).standard_normal((size * size, dim)).astype(np.float32)

    def embed(images: np.ndarray) -> np.ndarray:
        grey = images.astype(np.float32).mean(axis=3).reshape(len(images), -1)
        z = (grey - grey.mean(axis=1, keepdims=True)) @ weights
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    return Embedder(embed, dim, model_id, image_size=size)


@pytest.fixture
def faces() -> np.ndarray:
    """Frontal renders of three synthetic identities, uint8 (3, 64, 64, 3)."""
    return np.stack([render_face(p, Nuisance(), 64) for p in identities(0, 3)])


@pytest.fixture
def db(tmp_path, faces):
    embedder = projection_embedder()
    with IdentityDB.create(tmp_path / "ids.sqlite", embedder.embedding_dim, embedder.model_id) as db:
        for i, face in enumerate(faces):
            db.enroll(f"person{i}", embedder.embed(resize_face(face, 32)[None]), model_id=embedder.model_id)
        yield db


def video_of(face: np.ndarray) -> np.ndarray:
    """Four frames: blurred, dark, the clean face (index 2), cut off at the side."""
    return np.stack([cv2.GaussianBlur(face, (0, 0), 2.5), (face * 0.1).astype(np.uint8), face,
                     np.roll(face, 40, axis=1)])


def test_identify_video_selects_the_clean_frame_and_names_the_person(db, faces):
    # Execute
    result = identify_video(video_of(faces[1]), projection_embedder(), db, CROPPED, threshold=0.9)
    # Assert
    assert (result["identity"], result["id"], result["frame_index"]) == ("person1", 2, 2)
    assert result["score"] == pytest.approx(1.0, abs=1e-5)
    assert result["quality"]["index"] == 2 and len(result["per_frame"]) == 4
    assert result["quality"]["combined"] == max(q["combined"] for q in result["per_frame"])


def test_identify_video_with_the_detector_embeds_the_aligned_crop(tmp_path, faces):
    # Prepare: enrol the detector's crop of the clean face; the video has a blurred copy first
    embedder, detector, cfg = projection_embedder(), FaceDetector(), QualityConfig()
    clean = faces[2]
    crop = detector.crop(clean, detector.main_face(clean), embedder.image_size)
    video = np.stack([cv2.GaussianBlur(clean, (0, 0), 2.5), clean])
    with IdentityDB.create(tmp_path / "det.sqlite", embedder.embedding_dim, embedder.model_id) as db:
        db.enroll("person2", embedder.embed(crop[None]), model_id=embedder.model_id)
        db.enroll("person0", embedder.embed(resize_face(faces[0], 32)[None]), model_id=embedder.model_id)
        # Execute
        result = identify_video(video, embedder, db, cfg, threshold=0.9, detector=detector)
    # Assert
    assert (result["identity"], result["frame_index"]) == ("person2", 1)
    assert result["score"] == pytest.approx(1.0, abs=1e-5)
    assert result["quality"]["confidence"] > 0.9 and result["quality"]["frontalness"] > 0.8


def test_identify_video_answers_unknown_below_the_threshold(db, faces):
    # Prepare: an identity that is not enrolled
    stranger = render_face(identities(0, 4)[3], Nuisance(), 64)
    # Execute
    result = identify_video(video_of(stranger), projection_embedder(), db, CROPPED, threshold=0.95)
    # Assert
    assert result["identity"] == UNKNOWN and result["id"] is None and result["score"] < 0.95


def test_identify_video_errors(db, faces, tmp_path):
    # Prepare
    bad_video = video_of(faces[0])[[0, 1, 3]]
    other_model = projection_embedder(model_id="proj-v2")
    # Execute / Assert
    with pytest.raises(NoUsableFrameError, match=r"no frame of 3 passes the quality checks:\n  frame 0: sharpness="):
        identify_video(bad_video, projection_embedder(), db, CROPPED, threshold=0.5)
    with pytest.raises(IdentityDBError, match="model mismatch.*'proj-v1'.*'proj-v2'"):
        identify_video(video_of(faces[0]), other_model, db, CROPPED, threshold=0.5)
    with IdentityDB.create(tmp_path / "empty.sqlite", 16, "proj-v1") as empty:
        with pytest.raises(IdentityDBError, match="the database is empty"):
            identify_video(video_of(faces[0]), projection_embedder(), empty, CROPPED, threshold=0.5)


def test_threshold_at_far_hand_computed():
    # Prepare
    genuine, impostor = np.array([0.9, 0.8, 0.4]), np.array([0.7, 0.5, 0.3, 0.1])
    # Execute
    thresholds = [threshold_at_far(genuine, impostor, far) for far in (0.0, 0.25, 0.3, 0.5, 1.0)]
    # Assert: FAR(0.8) = 0, FAR(0.7) = 1/4, FAR(0.5) = FAR(0.4) = 2/4 (0.4 accepts one more genuine), FAR(0.1) = 1
    assert thresholds == [0.8, 0.7, 0.7, 0.4, 0.1]
    assert threshold_at_far([0.2], [0.9], 0.0) == np.inf
    with pytest.raises(ValueError, match="far must be in \\[0, 1\\], got 1.5"):
        threshold_at_far(genuine, impostor, 1.5)
    with pytest.raises(ValueError, match="need genuine and impostor scores, got 3 genuine and 0 impostor"):
        threshold_at_far(genuine, [], 0.1)


def test_threshold_at_far_is_the_best_roc_point_within_the_far():
    # Prepare
    rng = np.random.default_rng(1)
    genuine, impostor = rng.normal(0.6, 0.15, 300), rng.normal(0.1, 0.15, 3000)
    # Execute
    t = threshold_at_far(genuine, impostor, 1e-2)
    # Assert: a score of the ROC, FAR within budget, and the next lower score would exceed the budget
    scores = np.r_[genuine, impostor]
    assert t in roc_points(scores, np.r_[np.ones(300), np.zeros(3000)])[2]
    assert np.mean(impostor >= t) <= 1e-2
    assert np.mean(impostor >= scores[scores < t].max()) > 1e-2


def test_quality_spearman_pooled_and_within_videos():
    # Prepare
    truth = np.array([[0.1, 0.5, 0.9], [0.2, 0.3, 0.4]])
    # Execute
    same = evidence.quality_spearman(truth * 2, truth)
    reversed_within = evidence.quality_spearman(-truth + np.array([[0.0], [10.0]]), truth)
    # Assert
    assert same == {"pooled": pytest.approx(1.0), "within_video": pytest.approx(1.0), "videos": 2}
    assert reversed_within["within_video"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="expected non-empty \\(V, T\\) arrays of one shape"):
        evidence.quality_spearman(truth, truth[:, :2])


def test_clip_choices_score_the_selected_a_random_and_the_worst_frame_of_a_real_clip():
    named = ["ann", None, "bob", "ann", "ann"]
    measured = np.array([0.9, 0.0, 0.1, 0.5, 0.95])
    passed = np.array([True, False, False, True, False])
    out = evidence.clip_choices(named, measured, passed, "ann")
    assert out == {"selected": True, "random": 0.6, "worst": False, "frames": 5, "frames_with_face": 4,
                   "frames_passing": 2, "selected_frame": 0, "worst_frame": 2}  # frame 4 scores higher but fails
    assert evidence.clip_choices(named, measured, np.zeros(5, bool), "ann")["selected_frame"] == 4  # fallback
    with pytest.raises(ValueError, match="no frame of the clip has a face"):
        evidence.clip_choices([None], np.zeros(1), np.zeros(1, bool), "ann")
    with pytest.raises(ValueError, match="of one length"):
        evidence.clip_choices(named, measured[:2], passed, "ann")


def test_frame_choices_gate_on_passing_and_fall_back():
    # Prepare: video 0's best measured frame fails; no frame of video 1 passes
    measured = np.array([[0.9, 0.2, 0.6], [0.1, 0.7, 0.3]])
    passed = np.array([[False, True, True], [False, False, False]])
    truth = np.array([[0.3, 0.1, 0.8], [0.5, 0.2, 0.9]])
    # Execute
    choices, no_passing_frame = evidence.frame_choices(measured, passed, truth, seed=0)
    # Assert
    np.testing.assert_array_equal(choices["selected"], [2, 1])
    np.testing.assert_array_equal(choices["worst"], [1, 1])
    np.testing.assert_array_equal(choices["best"], [2, 2])
    np.testing.assert_array_equal(choices["random"], np.random.default_rng(0).integers(0, 3, 2))
    assert no_passing_frame == 1


def test_rank1_by_choice_counts_only_mated_videos():
    # Prepare: gallery identities 0 and 1 along the axes; video 2 is not enrolled
    gallery, gallery_labels = np.eye(2), np.array([0, 1])
    frames = np.array([
        [[1.0, 0.1], [0.1, 1.0]],   # identity 0: frame 0 right, frame 1 wrong
        [[1.0, 0.2], [0.2, 1.0]],   # identity 1: frame 1 right
        [[1.0, 0.0], [1.0, 0.0]],   # identity 2 (not in the gallery)
    ])
    choices = {"selected": np.array([0, 1, 0]), "worst": np.array([1, 0, 0])}
    # Execute
    result = evidence.rank1_by_choice(frames, np.array([0, 1, 2]), gallery, gallery_labels, choices)
    # Assert
    correct = result.pop("correct")
    assert result == {"selected": 1.0, "worst": 0.0, "videos": 2}
    assert correct["selected"].tolist() == [True, True] and correct["worst"].tolist() == [False, False]


def test_search_throughput_small_gallery():
    # Execute
    result = search_throughput(gallery_size=2000, dim=16, queries=500, threads=1, single_queries=10)
    # Assert
    assert result["queries_per_second"] > 0 and result["single_query_ms"] > 0
    assert result["top1_self_match"] == 1.0
    assert (result["gallery_size"], result["dim"], result["k"], result["threads"]) == (2000, 16, 1, 1)
    with pytest.raises(ValueError, match="gallery_size must be an integer >= 1, got 0"):
        search_throughput(gallery_size=0)
