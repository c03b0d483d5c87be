"""The embedded default dataset: procedurally generated faces, deterministic by seed.

An identity is a vector of :data:`IDENTITY_PARAMS` continuous parameters (face outline, jaw, eye, brow,
nose and mouth geometry, skin tone and hue, hair colour, hairline and volume, ears, iris). Each image of
an identity draws nuisance factors (:class:`Nuisance`): head yaw/pitch/roll, expression (smile, open
mouth, eye closure, raised brows), illumination direction, strength and colour, occlusion (glasses,
mask, fringe), blur, sensor noise, JPEG compression and imperfect alignment (scale and shift).
Features have depth, so yaw moves the nose more than the eyes and hides the far side of the face.

Every image gets its own random stream ``default_rng([seed, identity, image, stream])``, so the output
does not depend on generation order and the same seed gives byte-identical images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from benchmark.data import render
from benchmark.data.faceset import FaceSet
from benchmark.parallel import ordered_map

# name, centre, half-range: value = centre + z * half-range, z ~ N(0, 0.6) clipped to [-1, 1].
IDENTITY_PARAMS: tuple[tuple[str, float, float], ...] = (
    ("face_width", 0.50, 0.07),
    ("face_height", 0.66, 0.07),
    ("jaw_taper", 0.28, 0.18),
    ("eye_spacing", 0.20, 0.04),
    ("eye_height", -0.10, 0.06),
    ("eye_width", 0.085, 0.025),
    ("eye_tilt", 0.0, 0.18),
    ("brow_gap", 0.085, 0.03),
    ("brow_thickness", 0.025, 0.013),
    ("brow_slope", 0.0, 0.25),
    ("nose_length", 0.20, 0.06),
    ("nose_width", 0.07, 0.03),
    ("mouth_width", 0.15, 0.045),
    ("mouth_height", 0.33, 0.06),
    ("lip_thickness", 0.03, 0.014),
    ("skin_tone", 0.60, 0.28),
    ("skin_hue", 0.0, 1.0),
    ("hair_tone", 0.35, 0.33),
    ("hairline", 0.30, 0.14),
    ("hair_volume", 0.10, 0.09),
    ("ear_size", 0.11, 0.035),
    ("iris_tone", 0.35, 0.3),
)
# The face fills about 70% of the crop width, as in aligned face datasets.
FACE_ZOOM = 1.35
PARAM_INDEX = {name: i for i, (name, _, _) in enumerate(IDENTITY_PARAMS)}


@dataclass(frozen=True)
class Nuisance:
    """Per-image factors. Angles in degrees, offsets in normalized units (the canvas spans 2.0)."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    smile: float = 0.0
    mouth_open: float = 0.0
    eye_open: float = 1.0
    brow_raise: float = 0.0
    light_azimuth: float = 0.0
    light_elevation: float = 30.0
    ambient: float = 0.55
    diffuse: float = 0.5
    tint_r: float = 1.0
    tint_g: float = 1.0
    tint_b: float = 1.0
    glasses: bool = False
    mask: bool = False
    fringe: bool = False
    occluder: float = 0.0
    blur: float = 0.0
    motion_blur: float = 0.0
    noise: float = 0.0
    jpeg_quality: int = 100
    scale: float = 1.0
    shift_x: float = 0.0
    shift_y: float = 0.0
    background: int = 0


NUISANCE_FIELDS = tuple(f.name for f in fields(Nuisance))


def sample_identity(rng: np.random.Generator) -> np.ndarray:
    """One identity: float32 (len(IDENTITY_PARAMS),) of parameter values."""
    z = np.clip(rng.normal(0.0, 0.6, len(IDENTITY_PARAMS)), -1.0, 1.0)
    centre = np.array([c for _, c, _ in IDENTITY_PARAMS])
    half = np.array([h for _, _, h in IDENTITY_PARAMS])
    return (centre + z * half).astype(np.float32)


def sample_nuisance(rng: np.random.Generator, difficulty: float = 1.0) -> Nuisance:
    """Nuisance factors for one still image; ``difficulty`` scales every range (0 = frontal, clean)."""
    d = difficulty

    def sym(limit: float) -> float:
        return float(rng.uniform(-limit, limit) * d)

    return Nuisance(
        yaw=sym(30.0),
        pitch=sym(14.0),
        roll=sym(10.0),
        smile=float(np.clip(rng.normal(0.2, 0.45 * d), -0.6, 1.0)),
        mouth_open=float(max(0.0, rng.normal(0.0, 0.4 * d))),
        eye_open=float(np.clip(1.0 - abs(rng.normal(0.0, 0.3 * d)), 0.15, 1.0)),
        brow_raise=sym(0.03),
        light_azimuth=sym(60.0),
        light_elevation=float(rng.uniform(5.0, 60.0)),
        ambient=float(rng.uniform(0.6 - 0.25 * d, 0.7)),
        diffuse=float(rng.uniform(0.35, 0.35 + 0.5 * d)),
        tint_r=1.0 + sym(0.12),
        tint_g=1.0 + sym(0.06),
        tint_b=1.0 + sym(0.12),
        glasses=bool(rng.random() < 0.2 * d),
        mask=bool(rng.random() < 0.08 * d),
        fringe=bool(rng.random() < 0.15 * d),
        blur=float(max(0.0, rng.normal(0.0, 0.6 * d))),
        noise=float(abs(rng.normal(0.0, 0.02 * d))),
        jpeg_quality=int(rng.integers(25, 96)) if rng.random() < 0.5 * d else 100,
        scale=float(1.0 + sym(0.07)),
        shift_x=sym(0.05),
        shift_y=sym(0.05),
        background=int(rng.integers(0, 2**31 - 1)),
    )


def _skin(tone: float, hue: float) -> np.ndarray:
    warm = np.array([0.95, 0.72, 0.58])
    olive = np.array([0.82, 0.70, 0.52])
    base = warm + (olive - warm) * (hue + 1.0) / 2.0
    return (base * (0.35 + 0.75 * tone)).clip(0.0, 1.0).astype(np.float32)


def _background(rng: np.random.Generator, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    base = (rng.uniform(0.3, 0.7) + rng.uniform(-0.1, 0.1, 3)).astype(np.float32)
    grad = rng.uniform(-0.15, 0.15, 3).astype(np.float32)
    direction = rng.uniform(0, 2 * math.pi)
    ramp = (math.cos(direction) * X + math.sin(direction) * Y)[..., None]
    bg = base + grad * ramp
    for _ in range(3):
        blob = render.ellipse(X, Y, *rng.uniform(-1, 1, 2), *rng.uniform(0.1, 0.5, 2), soft=0.3)
        render.paint(bg, blob * 0.3, rng.uniform(0.2, 0.8, 3))
    return bg


def render_face(identity: np.ndarray, nz: Nuisance, size: int = 64) -> np.ndarray:
    """Render one face: uint8 (size, size, 3) RGB."""
    p = {name: float(identity[i]) for name, i in PARAM_INDEX.items()}
    res = 2 * size
    soft = 2.5 / res
    X0, Y0 = render.grid(res)
    # Alignment: the face frame is the image frame shifted, scaled and rolled.
    roll = math.radians(nz.roll)
    c, s = math.cos(roll), math.sin(roll)
    dx, dy = (X0 - nz.shift_x) / (nz.scale * FACE_ZOOM), (Y0 - nz.shift_y) / (nz.scale * FACE_ZOOM)
    X, Y = c * dx + s * dy, -s * dx + c * dy

    yaw, pitch = math.radians(nz.yaw), math.radians(nz.pitch)
    a, b = p["face_width"], p["face_height"]
    depth = 0.9 * a
    cy = 0.05

    def project(fx: float, fy: float, extra_depth: float = 0.0) -> tuple[float, float, float]:
        """Frontal face point -> image position and horizontal foreshortening (0 = hidden)."""
        r2 = (fx / a) ** 2 + (fy / b) ** 2
        z = depth * math.sqrt(max(0.0, 1.0 - r2)) + extra_depth
        x = fx * math.cos(yaw) + z * math.sin(yaw)
        y = cy + fy * math.cos(pitch) + z * math.sin(pitch)
        alpha = math.asin(max(-0.95, min(0.95, fx / a)))
        return x, y, max(0.0, math.cos(alpha + yaw) / math.cos(alpha))

    skin = _skin(p["skin_tone"], p["skin_hue"])
    hair = np.full(3, 0.05 + 0.8 * p["hair_tone"], np.float32) * np.array([1.0, 0.85, 0.65], np.float32)
    hx = depth * 0.15 * math.sin(yaw)
    ao, bo = a * (1.0 - 0.1 * abs(math.sin(yaw))), b * (1.0 - 0.08 * abs(math.sin(pitch)))

    canvas = np.zeros((res, res, 3), np.float32)
    head = np.zeros((res, res), np.float32)
    # Back hair and ears sit behind the face.
    vol = p["hair_volume"]
    back = render.ellipse(X, Y, hx, cy - 0.12, ao + vol, bo * 0.9 + vol * 0.6, soft=soft)
    render.paint(canvas, back, hair)
    head = np.maximum(head, back)
    for side in (-1.0, 1.0):
        ex = side * ao * 0.98 - 0.35 * a * math.sin(yaw)
        ear = render.ellipse(X, Y, ex, cy - 0.02, p["ear_size"] * 0.55, p["ear_size"], soft=soft)
        render.paint(canvas, ear, skin * 0.92)
        head = np.maximum(head, ear)
    # Face outline: an ellipse whose lower half narrows by jaw_taper.
    u = X - hx
    v = (Y - cy) / bo
    half_w = ao * (1.0 - p["jaw_taper"] * np.clip(v, 0.0, 1.0) ** 2)
    face = np.clip(0.5 - (np.sqrt((u / half_w) ** 2 + v * v) - 1.0) * min(ao, bo) / soft, 0.0, 1.0)
    render.paint(canvas, face, skin)
    head = np.maximum(head, face)

    # Eyes, irises, brows.
    for side in (-1.0, 1.0):
        ex, ey, fore = project(side * p["eye_spacing"], p["eye_height"])
        if fore <= 0.05:
            continue
        tilt = side * p["eye_tilt"]
        ew, eh = p["eye_width"] * fore, p["eye_width"] * 0.5 * nz.eye_open
        render.paint(canvas, render.ellipse(X, Y, ex, ey, ew, eh, tilt, soft), (0.93, 0.92, 0.9))
        iris_color = np.array([0.35, 0.25, 0.15]) * (1.0 - p["iris_tone"]) + np.array([0.2, 0.4, 0.55]) * p["iris_tone"]
        iris = render.ellipse(X, Y, ex + 0.2 * ew * math.sin(yaw), ey, 0.5 * p["eye_width"] * fore, 0.42 * p["eye_width"], soft=soft)
        render.paint(canvas, iris * render.ellipse(X, Y, ex, ey, ew, eh, tilt, soft), iris_color)
        bx, by, bfore = project(side * p["eye_spacing"], p["eye_height"] - p["brow_gap"] - nz.brow_raise)
        brow = render.ellipse(X, Y, bx, by, 1.25 * p["eye_width"] * bfore, p["brow_thickness"], side * p["brow_slope"], soft)
        render.paint(canvas, brow, hair * 0.8)
    # Nose: a shaded ridge and two nostrils; it stands out of the face, so yaw moves it most.
    nx, ny, _ = project(0.0, p["eye_height"] + p["nose_length"], extra_depth=0.12)
    nw = p["nose_width"]
    render.paint(canvas, render.ellipse(X, Y, nx, ny, nw, 0.045, soft=soft) * 0.35, skin * 0.7)
    for side in (-1.0, 1.0):
        render.paint(canvas, render.ellipse(X, Y, nx + side * 0.45 * nw, ny + 0.01, 0.22 * nw, 0.014, soft=soft), skin * 0.35)
    # Mouth: lips bent by the smile, a dark opening when open.
    mx, my, mfore = project(0.0, p["mouth_height"])
    mw = p["mouth_width"] * max(mfore, 0.3) * (1.0 + 0.15 * nz.smile)
    bend = -nz.smile * 0.05 * ((X - mx) / max(mw, 1e-3)) ** 2
    lips = render.ellipse(X, Y - bend, mx, my, mw, p["lip_thickness"] + 0.02 * nz.mouth_open, soft=soft)
    render.paint(canvas, lips, skin * np.array([0.85, 0.55, 0.55], np.float32))
    if nz.mouth_open > 0.05:
        inner = render.ellipse(X, Y - bend, mx, my, 0.8 * mw, 0.025 * nz.mouth_open + 0.002, soft=soft)
        render.paint(canvas, inner, (0.12, 0.05, 0.05))
    # Hair on top of the forehead, down to a hairline that recedes at the temples.
    hairline_y = cy - bo + p["hairline"] * bo + 0.12 * (u / ao) ** 2
    top = np.clip((hairline_y - Y) / soft + 0.5, 0.0, 1.0) * face
    render.paint(canvas, top, hair)
    if nz.fringe:
        render.paint(canvas, render.ellipse(X, Y, hx - 0.15, p["eye_height"] + cy - 0.16, 0.35, 0.14, 0.3, soft), hair)
    if nz.mask:
        mask_y = ny + 0.03
        cover = np.clip((Y - mask_y) / soft + 0.5, 0.0, 1.0) * render.ellipse(X, Y, hx, cy + 0.05, ao * 1.02, bo * 1.02, soft=soft)
        render.paint(canvas, cover, (0.55, 0.75, 0.85))

    light = np.array(
        [
            math.sin(math.radians(nz.light_azimuth)) * math.cos(math.radians(nz.light_elevation)),
            -math.sin(math.radians(nz.light_elevation)),
            math.cos(math.radians(nz.light_azimuth)) * math.cos(math.radians(nz.light_elevation)),
        ],
        np.float32,
    )
    shade = render.lambert(X, Y, hx, cy, ao * 1.05, bo * 1.05, light, nz.ambient, nz.diffuse)
    tint = np.array([nz.tint_r, nz.tint_g, nz.tint_b], np.float32)
    lit = canvas * shade[..., None] * tint

    if nz.glasses:
        for side in (-1.0, 1.0):
            ex, ey, fore = project(side * p["eye_spacing"], p["eye_height"])
            ring = render.ellipse(X, Y, ex, ey, 0.1 * max(fore, 0.2) + 0.015, 0.075, soft=soft)
            hole = render.ellipse(X, Y, ex, ey, 0.1 * max(fore, 0.2), 0.06, soft=soft)
            render.paint(lit, ring - ring * hole, (0.05, 0.05, 0.05))
            render.paint(lit, hole * 0.3, (0.2, 0.25, 0.3))
    bg = _background(np.random.default_rng(nz.background), X0, Y0)
    img = bg * (1.0 - head[..., None]) + lit * head[..., None]
    if nz.occluder > 0:
        occ_rng = np.random.default_rng(nz.background + 1)
        cx_, cy_ = occ_rng.uniform(-0.3, 0.3, 2)
        blob = render.ellipse(X0, Y0, cx_, cy_, 0.9 * nz.occluder, 0.6 * nz.occluder, occ_rng.uniform(0, math.pi), soft)
        render.paint(img, blob, _skin(occ_rng.uniform(0.2, 1.0), occ_rng.uniform(-1, 1)) * 0.8)

    img = render.downsample2(img)
    img = render.gaussian_blur(img, nz.blur)
    img = render.motion_blur(img, nz.motion_blur, math.radians(nz.background % 180))
    if nz.noise > 0:
        img = img + np.random.default_rng(nz.background + 2).normal(0.0, nz.noise, img.shape).astype(np.float32)
    out = render.to_uint8(img)
    return render.jpeg(out, nz.jpeg_quality) if nz.jpeg_quality < 100 else out


def identity_rng(seed: int, identity: int, image: int = -1, stream: int = 0) -> np.random.Generator:
    """The random stream of one identity (image=-1) or one of its images; independent of order."""
    return np.random.default_rng([seed, identity, image + 1, stream])


def identities(seed: int, count: int) -> np.ndarray:
    """Identity parameter vectors, float32 (count, len(IDENTITY_PARAMS))."""
    return np.stack([sample_identity(identity_rng(seed, i)) for i in range(count)])


def _render_identity(task: tuple[int, int, np.ndarray, int, int, float]) -> list[tuple[np.ndarray, Nuisance]]:
    """The images of one identity and their nuisances (one task of :func:`generate`)."""
    seed, i, identity, images_per_identity, size, difficulty = task
    out = []
    for k in range(images_per_identity):
        nz = sample_nuisance(identity_rng(seed, i, k), difficulty)
        out.append((render_face(identity, nz, size), nz))
    return out


def generate(
    seed: int, count: int, images_per_identity: int, size: int = 64, difficulty: float = 1.0, progress: bool = True,
    workers: int | None = None
) -> tuple[FaceSet, list[Nuisance]]:
    """Render ``count`` identities x ``images_per_identity`` images in ``workers`` processes (default: one per
    CPU core; the output does not depend on it); returns the faces and their nuisances."""
    params = identities(seed, count)
    tasks = [(seed, i, params[i], images_per_identity, size, difficulty) for i in range(count)]
    rendered = [pair for one in ordered_map(_render_identity, tasks, "synthetic faces", "identity", workers, progress)
                for pair in one]
    faces = FaceSet(
        images=np.stack([image for image, _ in rendered]),
        labels=np.repeat(np.arange(count, dtype=np.int64), images_per_identity),
        identities=[f"synthetic_{i:05d}" for i in range(count)],
        sources=[f"synthetic:{i:05d}:{k:03d}" for i in range(count) for k in range(images_per_identity)],
    )
    return faces, [nz for _, nz in rendered]


def frontal(nz: Nuisance) -> Nuisance:
    """The same factors with pose, occlusion and camera effects removed (for figures)."""
    return replace(nz, yaw=0, pitch=0, roll=0, glasses=False, mask=False, fringe=False, blur=0, noise=0, jpeg_quality=100)
