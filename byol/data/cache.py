"""Decode a dataset once into a uint8 tensor ``(N, 3, S, S)``, kept as a memory-mapped file.

The batched augmentation path reads whole uint8 batches from this cache; nothing is decoded
during training. Folder caches live in ``<cache_dir>/uint8/<name>-<key>/``:

- ``images.u8``: raw uint8 bytes, ``N * 3 * S * S``, C-order (N, 3, S, S);
- ``meta.json``: format version, fingerprint, size, resize policy, class names, labels,
  relative paths and skipped files.

``key`` identifies the request (folder, ``S``, resize policy, subset name); ``fingerprint``
the content (every file's relative path, byte size and mtime, its label, the classes). A call
whose fingerprint matches the stored one maps the file again (``reused=True``); otherwise the
cache is rebuilt in a temporary folder and renamed into place, so a crash never leaves a
half-written cache behind and a concurrent reader keeps its old mapping.

Resize policy (:mod:`byol.data.resize`): training caches hold the *whole* image resized to
``S x S`` (:data:`~byol.data.resize.WHOLE_IMAGE`; JPEGs are first decoded at the smallest
1/2, 1/4, 1/8 scale that keeps both sides >= ``S``), so random crops reach the edges of
non-square photos; evaluation caches hold the official test transform at ``image_size``
(:data:`~byol.data.resize.OFFICIAL_TEST`, full decode). That module says what each costs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from PIL import Image

from byol.atomic import file_mode, folder_mode, remove_stale_temporaries, temporary_prefix
from byol.data.folder import (
    FolderScan,
    default_num_workers,
    describe_error,
    open_rgb,
    warn_skipped,
)
from byol.data.resize import WHOLE_IMAGE, check_policy, draft_size, fit_image

# 2: the whole image, not its centre square, in training caches.
CACHE_FORMAT_VERSION = 2
_BLOCK = 2048


@dataclass
class ImageCache:
    """A whole split as uint8 pixels in memory (or memory-mapped).

    ``images``: (N, 3, S, S) uint8. ``labels``: (N,) int64, ``-1`` where unlabelled.
    ``paths``: one source path (or ``"<name>[i]"``) per image. ``skipped``: ``(path, reason)``
    for each source file that could not be decoded. ``location``: the cache folder on disk,
    None for in-memory data. ``reused``: True when an existing cache file was mapped instead of
    being built by this call.
    """

    images: torch.Tensor
    labels: torch.Tensor
    paths: list[str]
    classes: list[str]
    description: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    location: str | None = None
    reused: bool = False

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def size(self) -> int:
        """Side ``S`` of the cached images."""
        return int(self.images.shape[-1])

    @property
    def has_labels(self) -> bool:
        """Whether every image has a class label."""
        return len(self.classes) > 0


def check_cache_size(size: int) -> int:
    """Validate a cache side length; returns it."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"cache_size={size!r} must be a positive integer (e.g. 32 or 256)")
    return size


def resize_uint8_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize whole images to ``size x size``, bicubic with antialiasing (the training policy
    :data:`~byol.data.resize.WHOLE_IMAGE`, batched).

    ``images``: (N, 3, H, W) uint8. Returns (N, 3, size, size) uint8 (the input itself when it
    already has that size).
    """
    height, width = int(images.shape[-2]), int(images.shape[-1])
    if height == size and width == size:
        return images
    out = torch.empty((images.shape[0], 3, size, size), dtype=torch.uint8)
    for start in range(0, images.shape[0], _BLOCK):
        block = images[start : start + _BLOCK].float()
        resized = F.interpolate(
            block, size=(size, size), mode="bicubic", align_corners=False, antialias=True
        )
        out[start : start + _BLOCK] = resized.round().clamp(0, 255).to(torch.uint8)
    return out


def cache_from_arrays(
    images: npt.NDArray[np.uint8],
    labels: npt.NDArray[np.int64],
    size: int,
    *,
    classes: Sequence[str],
    description: str,
    name: str,
) -> ImageCache:
    """An in-memory :class:`ImageCache` from decoded arrays (digits, torchvision CIFAR-10).

    ``images``: (N, H, W, 3) uint8; ``labels``: (N,) int. Resized with
    :func:`resize_uint8_batch` when ``H, W != size``.
    """
    check_cache_size(size)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"images must be uint8 (N, H, W, 3), got {images.dtype} {tuple(images.shape)}"
        )
    tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    tensor = resize_uint8_batch(tensor, size).contiguous()
    return ImageCache(
        images=tensor,
        labels=torch.as_tensor(np.asarray(labels), dtype=torch.int64),
        paths=[f"{name}[{i}]" for i in range(len(labels))],
        classes=list(classes),
        description=description,
    )


def _relative(path: str, root: str) -> str:
    """``path`` relative to ``root`` with ``/`` separators (fast path for scanned paths)."""
    prefix = root.rstrip(os.sep) + os.sep
    text = path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, root)
    return text.replace(os.sep, "/")


def _slug(root: str) -> str:
    parts = Path(root).parts[-2:]
    text = "-".join(parts)
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in text)
    return cleaned.strip("-_")[:48] or "images"


def cache_key(root: str, size: int, variant: str = "", policy: str = WHOLE_IMAGE) -> str:
    """Identity of a cache request: folder, size, resize policy, subset name (16 hex)."""
    text = json.dumps([CACHE_FORMAT_VERSION, root, size, policy, variant])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def folder_fingerprint(scan: FolderScan, size: int, policy: str = WHOLE_IMAGE) -> str:
    """Content identity: relative paths, byte sizes, mtimes (ns), labels, classes, size, policy.

    Any added, removed, replaced or touched file changes it; it needs one ``stat`` per file.
    """
    digest = hashlib.sha256()
    header = [CACHE_FORMAT_VERSION, scan.root, size, policy, list(scan.classes)]
    digest.update(json.dumps(header).encode())
    for path, label in zip(scan.paths, scan.labels, strict=True):
        try:
            stat = os.stat(path)
            stamp = f"{stat.st_size}\t{stat.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        # surrogateescape: a file name that is not UTF-8 hashes as its own bytes.
        line = f"\n{_relative(path, scan.root)}\t{stamp}\t{label}"
        digest.update(line.encode("utf-8", errors="surrogateescape"))
    return digest.hexdigest()


def _decode_into(path: str, size: int, policy: str, row: npt.NDArray[np.uint8]) -> str | None:
    """Decode ``path`` into ``row`` (3, size, size) under ``policy``; returns why it failed, or
    None."""
    try:
        image = fit_image(open_rgb(path, draft_size=draft_size(size, policy)), size, policy)
        row[...] = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
        return None
    except Exception as error:  # any decoder failure means "skip this file"
        return describe_error(error)


def _map_images(path: Path, count: int, size: int) -> torch.Tensor:
    # Copy-on-write mapping: the tensor is writable without ever touching the file.
    array = np.memmap(path, dtype=np.uint8, mode="c", shape=(count, 3, size, size))
    return torch.from_numpy(array)


def _load_cache(folder: Path, scan: FolderScan, fingerprint: str) -> ImageCache | None:
    meta_path, images_path = folder / "meta.json", folder / "images.u8"
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("version") != CACHE_FORMAT_VERSION or meta.get("fingerprint") != fingerprint:
            return None
        count, size = int(meta["count"]), int(meta["size"])
        if images_path.stat().st_size != count * 3 * size * size:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    root = Path(scan.root)
    return ImageCache(
        images=_map_images(images_path, count, size),
        labels=torch.tensor(meta["labels"], dtype=torch.int64),
        paths=[str(root / p) for p in meta["paths"]],
        classes=list(meta["classes"]),
        description=str(meta["description"]),
        skipped=[(str(root / p), r) for p, r in meta["skipped"]],
        location=str(folder),
        reused=True,
    )


def _decode_all(
    scan: FolderScan,
    size: int,
    policy: str,
    images: npt.NDArray[np.uint8],
    num_workers: int,
    progress: bool,
    description: str,
) -> list[str | None]:
    from tqdm.auto import tqdm

    reasons: list[str | None] = [None] * len(scan)

    def work(index: int) -> None:
        reasons[index] = _decode_into(scan.paths[index], size, policy, images[index])

    with (
        tqdm(
            total=len(scan), desc=f"caching {description}", unit="img", disable=not progress
        ) as bar,
        ThreadPoolExecutor(max_workers=num_workers) as pool,
    ):
        # Blocks bound the number of pending futures for folders with millions of files.
        for start in range(0, len(scan), _BLOCK):
            block = range(start, min(start + _BLOCK, len(scan)))
            list(pool.map(work, block))
            bar.update(len(block))
    return reasons


def build_folder_cache(
    scan: FolderScan,
    cache_dir: str | os.PathLike[str],
    size: int,
    *,
    description: str | None = None,
    variant: str = "",
    num_workers: int | None = None,
    progress: bool = True,
    on_build: Callable[[], Any] | None = None,
    policy: str = WHOLE_IMAGE,
) -> ImageCache:
    """Map the cache of ``scan`` at ``size``, building it first if missing or stale.

    ``policy``: how each image becomes ``size x size`` (:mod:`byol.data.resize`): the whole
    image for training (default), the official test transform for evaluation.
    ``variant``: names the subset (e.g. ``"max_images=1000"``) so different subsets of one
    folder keep separate caches. ``num_workers``: decoding threads (default: usable cores, at
    most 8). ``on_build``: called once when this call decodes (tests count rebuilds with it).
    Unreadable files are skipped and listed in ``skipped`` (with a warning); raises
    ``ValueError`` when none can be decoded or ``cache_dir`` is not writable.
    """
    check_cache_size(size)
    check_policy(policy)
    description = description or scan.root
    base = _cache_base(cache_dir)
    folder = base / f"{_slug(scan.root)}-{cache_key(scan.root, size, variant, policy)}"
    fingerprint = folder_fingerprint(scan, size, policy)
    cached = _load_cache(folder, scan, fingerprint)
    if cached is not None:
        warn_skipped(cached.skipped, len(cached) + len(cached.skipped), description)
        return cached

    if on_build is not None:
        on_build()
    workers = default_num_workers() if num_workers is None else max(1, num_workers)
    remove_stale_temporaries(base)  # builds that a kill interrupted
    temp = Path(tempfile.mkdtemp(prefix=temporary_prefix(folder), dir=base))
    temp.chmod(folder_mode())  # mkdtemp makes it private; other users of the cache may read it
    try:
        meta = {
            "version": CACHE_FORMAT_VERSION,
            "fingerprint": fingerprint,
            "description": description,
            "root": scan.root,
            "size": size,
            "resize_policy": policy,
        }
        _write_cache_files(temp, scan, meta, workers, progress)
        _swap_into_place(temp, folder)
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    result = _load_cache(folder, scan, fingerprint)
    if result is None:
        raise ValueError(
            f"the cache {folder} changed while it was being written (another run building "
            f"it at the same time?); run again"
        )
    result.reused = False
    warn_skipped(result.skipped, len(result) + len(result.skipped), description)
    return result


def _cache_base(cache_dir: str | os.PathLike[str]) -> Path:
    """``<cache_dir>/uint8``, created; a ``ValueError`` naming the fix when it cannot be."""
    base = Path(cache_dir).expanduser() / "uint8"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"cache_dir {str(cache_dir)!r} is not writable ({error.strerror}); "
            f"set data.cache_dir to a writable folder"
        ) from error
    return base


def _write_cache_files(
    temp: Path, scan: FolderScan, meta: dict[str, Any], workers: int, progress: bool
) -> None:
    """Decode every image of ``scan`` into ``temp/images.u8`` (rows of the unreadable ones
    dropped) and write ``temp/meta.json`` (``meta`` plus counts, labels, paths, skipped)."""
    size, policy, description = meta["size"], meta["resize_policy"], meta["description"]
    images_path = temp / "images.u8"
    shape = (len(scan), 3, size, size)
    images = np.memmap(images_path, dtype=np.uint8, mode="w+", shape=shape)
    reasons = _decode_all(scan, size, policy, images, workers, progress, description)
    keep = [i for i, r in enumerate(reasons) if r is None]
    skipped = [(scan.paths[i], r) for i, r in enumerate(reasons) if r is not None]
    if not keep:
        path, reason = skipped[0]
        raise ValueError(
            f"none of the {len(scan)} image files in {scan.root!r} can be read "
            f"(e.g. {path}: {reason}); check the files or point the source elsewhere"
        )
    if skipped:
        # Compact in place: destination rows never run ahead of source rows.
        for target, source in enumerate(keep):
            if target != source:
                images[target] = images[source]
    images.flush()
    del images
    with open(images_path, "r+b") as handle:
        handle.truncate(len(keep) * 3 * size * size)
    meta = {
        **meta,
        "count": len(keep),
        "classes": list(scan.classes),
        "labels": [scan.labels[i] for i in keep],
        "paths": [_relative(scan.paths[i], scan.root) for i in keep],
        "skipped": [[_relative(p, scan.root), r] for p, r in skipped],
    }
    (temp / "meta.json").write_text(json.dumps(meta))  # json escapes odd names: ASCII
    for file in (images_path, temp / "meta.json"):
        file.chmod(file_mode())


def _swap_into_place(temp: Path, folder: Path) -> None:
    """Rename ``temp`` to ``folder``, replacing a stale ``folder`` if there is one."""
    if folder.exists():
        trash = Path(tempfile.mkdtemp(prefix=temporary_prefix(folder), dir=folder.parent))
        # OSError: a concurrent build removed it already.
        with contextlib.suppress(OSError):
            os.replace(folder, trash / "old")
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.rename(temp, folder)
    except OSError:
        # A concurrent build won the race: its result is identical, keep it.
        if not (folder / "meta.json").exists():
            raise


class CachedImageDataset(torch.utils.data.Dataset[tuple[Any, int]]):
    """Per-image access to an :class:`ImageCache`, for the per-image augmentation path.

    ``dataset[i]`` is ``(transform(image), label)`` with ``image`` an ``RGB`` PIL image of
    ``S x S`` pixels (``image`` itself without a transform).
    """

    def __init__(
        self, cache: ImageCache, transform: Callable[[Image.Image], Any] | None = None
    ) -> None:
        self.cache = cache
        self.transform = transform

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        pixels = self.cache.images[index].permute(1, 2, 0).numpy()
        image = Image.fromarray(np.ascontiguousarray(pixels))
        label = int(self.cache.labels[index])
        if self.transform is not None:
            return self.transform(image), label
        return image, label
