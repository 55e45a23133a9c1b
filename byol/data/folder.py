"""Folders of image files: recursive scan, RGB decoding, and a per-image ``Dataset``.

Scan rules (:func:`scan_folder`):

- every regular file below the root whose extension is in :data:`IMAGE_EXTENSIONS` (any case)
  counts; special files (FIFOs, devices, sockets) are skipped with a warning, as a FIFO would
  block its reader forever;
  names starting with ``.`` (hidden files and folders such as ``.ipynb_checkpoints`` or macOS
  ``._x.jpg`` side files) are ignored; symbolic links are followed, loops are not;
- the order is the sorted relative path (split into parts), the same on every machine;
- labels come from class folders only when *every* image sits inside a first-level
  sub-folder: the class is that folder's name, classes sorted, label = index. Otherwise no
  image has a label (label ``-1``, ``classes == ()``).

Unreadable files (zero bytes, truncated or corrupt data, a text file named ``.jpg``) are
skipped and listed, never silently dropped:

- the uint8 cache (:mod:`byol.data.cache`) decodes every image anyway, so its ``skipped`` list
  is complete;
- :class:`ImageFolderDataset` checks files when it is built (``validate``): ``"header"`` opens
  each file and parses its header (cheap; catches empty, non-image and most corrupt files),
  ``"full"`` decodes every pixel (catches truncated files too, as slow as one epoch),
  ``"none"`` checks nothing. A file that still fails to decode during training is replaced by
  the next readable image (``on_error="substitute"``, so the epoch keeps its length) with a
  :class:`SkippedImagesWarning`, or raises (``on_error="raise"``).
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import torch
from PIL import Image, ImageOps

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

Validate = Literal["none", "header", "full"]
OnError = Literal["substitute", "raise"]


class SkippedImagesWarning(UserWarning):
    """Some image files could not be read and were left out (or replaced)."""


@dataclass(frozen=True)
class FolderScan:
    """The image files found below ``root``, in a fixed order.

    ``paths``: absolute paths, sorted by relative path. ``labels``: class index per path, or
    ``-1`` for every path when the folder has no class sub-folders. ``classes``: class names
    (sorted), empty without class folders.
    """

    root: str
    paths: tuple[str, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def has_labels(self) -> bool:
        """Whether labels come from class folders."""
        return len(self.classes) > 0

    def subset(self, indices: Sequence[int]) -> FolderScan:
        """The scan restricted to ``indices`` (kept in the given order)."""
        return FolderScan(
            root=self.root,
            paths=tuple(self.paths[i] for i in indices),
            labels=tuple(self.labels[i] for i in indices),
            classes=self.classes,
        )


def _has_image_extension(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _is_regular_file(path: str, special: list[str]) -> bool:
    """Whether ``path`` (links followed) is a regular file; special files (a FIFO would block
    its reader forever) are added to ``special``, broken links are left to the decoder."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return True  # a broken link: reported as unreadable when decoded
    if stat.S_ISREG(mode):
        return True
    special.append(path)
    return False


def scan_folder(root: str | os.PathLike[str]) -> FolderScan:
    """Find every image file below ``root`` (recursively), in a deterministic order.

    Raises ``ValueError`` if ``root`` does not exist, is not a folder, or holds no image file.
    """
    root_path = Path(root).expanduser()
    if not root_path.exists():
        raise ValueError(f"folder {str(root)!r} does not exist; pass an existing image folder")
    if not root_path.is_dir():
        raise ValueError(f"{str(root)!r} is a file, not a folder; pass the folder holding images")
    root_path = root_path.resolve()

    relative: list[tuple[str, ...]] = []
    special: list[str] = []
    seen_dirs: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root_path, followlinks=True):
        info = os.stat(dirpath)
        key = (info.st_dev, info.st_ino)
        if key in seen_dirs:
            # A symbolic link back to a folder already walked: do not loop or count twice.
            dirnames[:] = []
            continue
        seen_dirs.add(key)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        base = Path(dirpath).relative_to(root_path).parts
        for name in filenames:
            if (
                not name.startswith(".")
                and _has_image_extension(name)
                and _is_regular_file(os.path.join(dirpath, name), special)
            ):
                relative.append((*base, name))
    if special:
        warnings.warn(
            f"skipped {len(special)} special files (FIFOs, devices, sockets) named like images "
            f"in {str(root)!r} (first: {special[0]}); only regular files are read",
            SkippedImagesWarning,
            stacklevel=2,
        )
    if not relative:
        raise ValueError(
            f"folder {str(root)!r} holds no image files (searched recursively for "
            f"{' '.join(IMAGE_EXTENSIONS)}, any case); point the source at a folder of images"
        )
    relative.sort()
    paths = tuple(str(root_path.joinpath(*parts)) for parts in relative)
    if all(len(parts) >= 2 for parts in relative):
        classes = tuple(sorted({parts[0] for parts in relative}))
        index = {name: i for i, name in enumerate(classes)}
        labels = tuple(index[parts[0]] for parts in relative)
    else:
        classes = ()
        labels = (-1,) * len(relative)
    return FolderScan(root=str(root_path), paths=paths, labels=labels, classes=classes)


def _composite_on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert a decoded image of any PIL mode to 8-bit ``RGB``.

    - transparency (``RGBA``, ``LA``, ``PA``, ``RGBa``, ``La``, palette with a transparent
      colour) is composited on white, as a viewer shows it;
    - 16/32-bit integer grey (``I;16*``, ``I``) is scaled from 0..65535 to 0..255
      (``round(v / 257)``, values outside clipped) instead of being clipped at 255;
    - float grey (``F``) is taken as 0..1 when its maximum is <= 1, else as 0..255 (clipped);
    - every other mode (``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ...) uses PIL's conversion.

    Raises ``ValueError``/``OSError`` from PIL for modes it cannot convert (e.g. ``LAB``).
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in image.info
    ):
        return _composite_on_white(image)
    if mode.startswith("I"):
        values = np.asarray(image).astype(np.int64)
        grey = ((np.clip(values, 0, 65535) + 128) // 257).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "F":
        values_f = np.asarray(image, dtype=np.float64)
        finite_max = float(np.nanmax(values_f)) if values_f.size else 0.0
        scale = 255.0 if finite_max <= 1.0 else 1.0
        grey_f = np.nan_to_num(values_f * scale, nan=0.0)
        return Image.fromarray(np.clip(np.rint(grey_f), 0, 255).astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def open_rgb(path: str | os.PathLike[str] | BinaryIO, draft_size: int | None = None) -> Image.Image:
    """Decode an image file fully into an ``RGB`` PIL image.

    The EXIF orientation, when present, is applied (as photo viewers do); only the first frame
    of multi-frame files is used. ``draft_size``: let the JPEG decoder downscale by 2/4/8
    while keeping both sides >= ``draft_size`` (much faster for large photos).
    Raises ``OSError``/``ValueError`` (or PIL's ``DecompressionBombError``) for unreadable files.
    """
    with Image.open(path) as image:
        if draft_size is not None and image.format == "JPEG":
            image.draft(None, (draft_size, draft_size))
        image.load()
        # Not in place: always a new image, so it outlives the file handle closed on exit.
        oriented = ImageOps.exif_transpose(image)
        return to_rgb(oriented)


def describe_error(error: BaseException) -> str:
    """One line naming why a file could not be read."""
    text = str(error).strip().splitlines()
    message = text[0] if text else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def check_image(path: str, validate: Validate = "header") -> str | None:
    """Return why ``path`` cannot be read (one line), or None when it looks readable.

    ``"header"`` parses the header only (size and mode), ``"full"`` decodes all pixels and the
    RGB conversion, ``"none"`` only checks that the file is not empty.
    """
    try:
        if os.path.getsize(path) == 0:
            return "empty file (0 bytes)"
        if validate == "none":
            return None
        if validate == "full":
            open_rgb(path)
            return None
        with Image.open(path) as image:
            width, height = image.size
            if width <= 0 or height <= 0:
                return f"image has size {width}x{height}"
        return None
    except Exception as error:  # any decoder failure means "skip this file"
        return describe_error(error)


def check_images(
    paths: Sequence[str], validate: Validate = "header", num_workers: int | None = None
) -> list[str | None]:
    """:func:`check_image` for many files, in threads (file reads and PIL decoding release
    the GIL). Returns one entry per path, in order."""
    workers = default_num_workers() if num_workers is None else max(1, num_workers)
    if workers == 1 or len(paths) < 64:
        return [check_image(p, validate) for p in paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: check_image(p, validate), paths, chunksize=64))


def default_num_workers() -> int:
    """Threads for decoding: the usable CPU cores, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def warn_skipped(skipped: Sequence[tuple[str, str]], total: int, where: str) -> None:
    """Emit one :class:`SkippedImagesWarning` summarising ``skipped`` (no-op when empty)."""
    if not skipped:
        return
    path, reason = skipped[0]
    warnings.warn(
        f"skipped {len(skipped)} of {total} image files in {where} that could not be read "
        f"(first: {path}: {reason})",
        SkippedImagesWarning,
        stacklevel=3,
    )


class ImageFolderDataset(torch.utils.data.Dataset[tuple[Any, int]]):
    """Images decoded on access, for datasets too large for the uint8 cache.

    ``dataset[i]`` is ``(image, label)``: ``image`` is an ``RGB`` PIL image of the file's own
    size (or ``transform(image)``), ``label`` the class index or ``-1``.

    ``source``: a folder (scanned with :func:`scan_folder`) or an existing :class:`FolderScan`.
    ``validate``/``on_error``: see the module docstring. Files found unreadable are in
    ``skipped`` as ``(path, reason)``; ``len(dataset) == found - len(skipped)`` at build time.
    Raises ``ValueError`` when no file is readable.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | FolderScan,
        transform: Callable[[Image.Image], Any] | None = None,
        validate: Validate = "header",
        on_error: OnError = "substitute",
        num_workers: int | None = None,
    ) -> None:
        if validate not in ("none", "header", "full"):
            raise ValueError(f"validate={validate!r} is not one of 'none', 'header', 'full'")
        if on_error not in ("substitute", "raise"):
            raise ValueError(f"on_error={on_error!r} is not one of 'substitute', 'raise'")
        scan = source if isinstance(source, FolderScan) else scan_folder(source)
        reasons = check_images(scan.paths, validate, num_workers)
        self.transform = transform
        self.on_error: OnError = on_error
        self.root: str = scan.root
        self.classes: list[str] = list(scan.classes)
        self.found: int = len(scan)
        self.skipped: list[tuple[str, str]] = [
            (p, r) for p, r in zip(scan.paths, reasons, strict=True) if r is not None
        ]
        keep = [i for i, r in enumerate(reasons) if r is None]
        if not keep:
            path, reason = self.skipped[0]
            raise ValueError(
                f"none of the {len(scan)} image files in {scan.root!r} can be read "
                f"(e.g. {path}: {reason}); check the files or point the source elsewhere"
            )
        self.paths: list[str] = [scan.paths[i] for i in keep]
        self.labels: list[int] = [scan.labels[i] for i in keep]
        warn_skipped(self.skipped, len(scan), repr(scan.root))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        if not -len(self.paths) <= index < len(self.paths):
            raise IndexError(f"index {index} out of range for {len(self.paths)} images")
        index %= len(self.paths)
        # Bounded search for a readable substitute, so one bad file cannot stall an epoch.
        for offset in range(min(len(self.paths), 16)):
            i = (index + offset) % len(self.paths)
            try:
                image = open_rgb(self.paths[i])
            except Exception as error:  # decoder failures vary by format
                reason = describe_error(error)
                if self.on_error == "raise":
                    raise ValueError(
                        f"image {self.paths[i]} cannot be decoded ({reason}); remove it or "
                        f"build the dataset with validate='full' to skip it up front"
                    ) from error
                # Recorded in this process only (DataLoader workers keep their own copy).
                self.skipped.append((self.paths[i], reason))
                warnings.warn(
                    f"image {self.paths[i]} cannot be decoded ({reason}); using the next "
                    f"image instead",
                    SkippedImagesWarning,
                    stacklevel=2,
                )
                continue
            if self.transform is not None:
                return self.transform(image), self.labels[i]
            return image, self.labels[i]
        raise ValueError(
            f"16 consecutive images from {self.paths[index]} on cannot be decoded; check "
            f"the files under {self.root!r}"
        )
