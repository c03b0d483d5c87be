"""Real data: enrol the people in ../shared/data/real/photos and the clip's reference stills, then
identify the person in short_hamilton_clip.mp4 (Lin-Manuel Miranda; see videos/SOURCE.txt): with a
non-learned baseline, and with the converted pretrained FaceNet comparing the selected, a random and the
worst-scored frame (issue 14).

No trained model exists at this point, so the embedder is a documented non-learned baseline:
normalized cross-correlation of the aligned face crop, i.e. the grey 64 x 64 MTCNN crop with its
mean removed, L2-normalized (cosine of two such vectors = the crops' Pearson correlation). It tests
the pipeline (video -> quality -> selection -> crop -> embedding -> open-set search), not a model.
The open-set threshold is the ROC point at FAR 0.05 over every pair of enrolled photos (14 genuine,
91 impostor pairs: too few for a smaller FAR to mean anything).
"""

import hashlib
from itertools import combinations

import numpy as np
import pytest

from benchmark.data.detect import FaceDetector
from benchmark.data.images import is_supported, read_image
from benchmark.evaluation.verification import threshold_at_far
from benchmark.identify.database import IdentityDB
from benchmark.identify.evidence import clip_choices
from benchmark.identify.pipeline import Embedder, face_crop, identify_video
from benchmark.identify.quality import failed_checks, score_frames
from benchmark.identify.settings import QualityConfig
from benchmark.identify.video import read_video
from benchmark.models.checkpoint import embed_images
from benchmark.models.facenet import GEOMETRY
from benchmark.models.pretrained import pretrained_face_model

SIZE = 64
# The reference stills beside the clip, by the identity folder names of photos/.
STILLS = {"reference_lin-manuel-miranda.png": "lin_manuel_miranda",
          "reference_alex-lacamoire_also_in_clip.png": "alex_lacamoire"}


# Who the main face of each sampled frame shows (max_frames 64: frame numbers 0, 5, ..., 270), labelled by eye:
# Lin-Manuel Miranda in the wide shot and the medium close-ups, Alex Lacamoire's profile close-ups between them;
# the audience shots from frame 215 on are left out (unlabelled faces).
SEGMENTS = {"lin_manuel_miranda": lambda n: (n <= 15) | ((n >= 85) & (n <= 210)),
            "alex_lacamoire": lambda n: (n >= 20) & (n <= 80)}


def enrolment_crops(real_data_dir, detector, geometry) -> dict[str, list[np.ndarray]]:
    """The face of every distinct enrolment image (the stills are byte-identical copies of photos), by name."""
    sources = [(p.parent.name, p) for p in sorted((real_data_dir / "photos").glob("*/*")) if is_supported(p)]
    clip_dir = real_data_dir / "videos" / "lin_manuel_miranda"
    sources += [(name, clip_dir / file) for file, name in STILLS.items()]
    crops, seen = {}, set()
    for name, path in sources:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            image = read_image(path)
            crops.setdefault(name, []).append(detector.crop(image, detector.main_face(image), geometry))
    return crops


def ncc_embed(images: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S, 3) -> float32 (N, S*S): mean-centred grey pixels, L2-normalized."""
    grey = (images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).reshape(len(images), -1)
    grey -= grey.mean(axis=1, keepdims=True)
    return grey / np.linalg.norm(grey, axis=1, keepdims=True)


@pytest.mark.real_data
def test_identifies_lin_manuel_miranda_in_the_hamilton_clip(real_data_dir, tmp_path):
    # Prepare: crop every distinct enrolment image (the stills are byte-identical copies of photos)
    detector = FaceDetector(min_face_size=40)
    embedder = Embedder(ncc_embed, SIZE * SIZE, "ncc-grey-64", SIZE)
    clip_dir = real_data_dir / "videos" / "lin_manuel_miranda"
    crops = enrolment_crops(real_data_dir, detector, SIZE)
    embeddings = {name: embedder.embed(np.stack(c)) for name, c in crops.items()}
    names = [n for n, e in embeddings.items() for _ in e]
    vectors = np.concatenate(list(embeddings.values()))
    pairs = list(combinations(range(len(names)), 2))
    scores = np.array([vectors[i] @ vectors[j] for i, j in pairs])
    same = np.array([names[i] == names[j] for i, j in pairs])
    threshold = threshold_at_far(scores[same], scores[~same], 0.05)
    video = read_video(clip_dir / "short_hamilton_clip.mp4", max_frames=16)
    cfg = QualityConfig()
    with IdentityDB.create(tmp_path / "people.sqlite", embedder.embedding_dim, embedder.model_id) as db:
        for name, e in embeddings.items():
            db.enroll(name, e, model_id=embedder.model_id, metadata={"images": len(e)})

        # Execute
        result = identify_video(video.frames, embedder, db, cfg, threshold=threshold, detector=detector)
        ranked = db.search(embeddings["lin_manuel_miranda"][0], k=2, model_id=embedder.model_id)

    # Assert
    assert len(crops) == 6 and sum(map(len, crops.values())) == 15
    assert ranked[0].name == "lin_manuel_miranda" and ranked[0].score == pytest.approx(1.0, abs=1e-5)
    assert len(result["per_frame"]) == len(video.frames) == 16
    assert result["quality"]["confidence"] >= cfg.min_confidence
    assert result["quality"]["frontalness"] >= cfg.min_frontalness
    assert result["identity"] == "lin_manuel_miranda", result
    assert result["score"] >= threshold
    # The audience shots that end the clip show faces in profile: the frontalness check rejects them.
    assert all(f["frontalness"] < cfg.min_frontalness for f in result["per_frame"][-3:])


@pytest.mark.real_data
def test_frame_choices_on_the_real_clip_with_the_pretrained_facenet(real_data_dir, facenet_cache):
    # Prepare: the converted FaceNet, each enrolled person's mean template, FaceNet's crops of every sampled frame
    model = pretrained_face_model(facenet_cache)
    detector = FaceDetector(min_face_size=40)
    crops = enrolment_crops(real_data_dir, detector, GEOMETRY)
    names = sorted(crops)
    templates = np.stack([embed_images(model, np.stack(crops[name])).mean(axis=0) for name in names])
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    video = read_video(real_data_dir / "videos" / "lin_manuel_miranda" / "short_hamilton_clip.mp4", max_frames=64)
    cfg = QualityConfig()
    scores = score_frames(video.frames, cfg, detector)
    faces = [q for q in scores if q.detection is not None]
    embedded = dict(zip((q.index for q in faces), embed_images(
        model, np.stack([face_crop(video.frames[q.index], q, detector, GEOMETRY) for q in faces]))))

    # Execute: the enrolled person closest to each frame's face, then the three choices over the clip and per person
    named = [names[int(np.argmax(templates @ embedded[q.index]))] if q.index in embedded else None for q in scores]
    measured = np.array([q.combined for q in scores])
    passed = np.array([not failed_checks(q, cfg) for q in scores])
    clip = clip_choices(named, measured, passed, "lin_manuel_miranda")
    numbers = np.asarray(video.frame_numbers)
    people = {}
    for person, in_segment in SEGMENTS.items():
        rows = np.flatnonzero(in_segment(numbers))
        people[person] = clip_choices([named[i] for i in rows], measured[rows], passed[rows], person)
    print(f"\nwhole clip as Lin-Manuel Miranda's: {clip}\nper person: {people}")

    # Assert: the selected frame names Lin-Manuel Miranda, whom only part of the clip shows
    assert clip["frames"] == len(video.frames) == 55 and clip["selected"]
    assert named[clip["selected_frame"]] == "lin_manuel_miranda" and clip["random"] < 1.0
    assert people["lin_manuel_miranda"]["frames"] == 30 and people["alex_lacamoire"]["frames"] == 13
    assert people["lin_manuel_miranda"]["selected"] and people["alex_lacamoire"]["selected"]
