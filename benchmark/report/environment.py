"""What a reviewer needs to reproduce the report's numbers: package versions, the machine, seeds, the
data manifest's hashes and the git revision."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

PACKAGES = (
    "facebench", "torch", "torchvision", "timm", "numpy", "scikit-learn", "faiss-cpu", "tenseal", "flwr",
    "torchattacks", "facenet-pytorch", "opencv-python-headless", "dvc", "papermill", "pandas", "matplotlib",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each distribution, "not installed" where it is absent."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what :mod:`platform` says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def git_revision(cwd: str | os.PathLike = ".") -> str:
    """``git describe --always --dirty`` of ``cwd``'s repository, or "unknown" outside one."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=cwd,
                             capture_output=True, text=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def manifest_digest(manifest: dict) -> str:
    """SHA-256 over the data manifest's content hashes (faces, protocol, videos): one value that changes
    exactly when the images or the splits do."""
    hashes = manifest.get("hashes") or {}
    text = "\n".join(f"{k}={hashes[k]}" for k in sorted(hashes))
    return hashlib.sha256(text.encode()).hexdigest()


def environment(seed: int, manifest: dict, cwd: str | os.PathLike = ".") -> dict:
    """The report's environment block."""
    import torch

    return {
        "git_revision": git_revision(cwd),
        "seed": seed,
        "data_source": (manifest.get("source") or {}).get("kind"),
        "data_manifest_sha256": manifest_digest(manifest),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "packages": package_versions(),
    }
