"""Tar shards in the WebDataset layout: written once from any source, streamed for training.

A shard folder holds ``shard-000000.tar``, ``shard-000001.tar``, ... and ``shards.json``
(image count per shard, class names). Each tar holds, per image, ``NNNNNN.<ext>`` (the image
file's own bytes: ``.jpg`` for JPEGs; arrays such as digits are stored losslessly as ``.png``)
and, for labelled data, ``NNNNNN.cls`` (the class index in ASCII), where ``NNNNNN`` is the
image's index over the whole set. This is the layout WebDataset reads (webdataset.github.io
"WebDataset Format"); the index file is this package's own, so that every process knows the
shard sizes without reading the tars.

:class:`ShardStream` reads them sequentially, as on a network file system or object store:
every process (rank) owns a fixed share of the shards, every DataLoader worker a share of its
rank's, and each worker streams its shards in a per-epoch order through a shuffle buffer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import random
import tarfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from byol.atomic import atomic_folder, file_mode
from byol.data.folder import SkippedImagesWarning, check_images, describe_error, open_rgb
from byol.data.registry import ImageSource

SHARD_INDEX = "shards.json"
SHARD_FORMAT = "byol-shards/1"
KEY_DIGITS = 6
# An index lists one entry per shard: a few hundred kilobytes for millions of images.
MAX_INDEX_BYTES = 64 << 20


@dataclass(frozen=True)
class ShardSet:
    """A shard folder: ``files`` (names in ``root``), images per shard, class names;
    ``skipped``: unreadable files :func:`write_shards` left out, ``(path, reason)``."""

    root: Path
    files: tuple[str, ...]
    counts: tuple[int, ...]
    classes: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def num_images(self) -> int:
        return sum(self.counts)


def is_shard_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder written by :func:`write_shards`."""
    return (Path(path).expanduser() / SHARD_INDEX).is_file()


def read_shard_set(path: str | os.PathLike[str]) -> ShardSet:
    """Read and check ``path/shards.json``; raises ``ValueError`` naming what is wrong.

    Checked: shard names are plain relative names inside the folder, counts are non-negative
    integers, and each count equals the images its tar really holds (counted from the tar
    headers, without reading the images).
    """
    root = Path(path).expanduser()
    index_file = root / SHARD_INDEX
    try:
        if index_file.stat().st_size > MAX_INDEX_BYTES:
            raise ValueError(f"{index_file.stat().st_size} bytes is too large for a shard index")
        index = json.loads(index_file.read_text(encoding="utf-8"))
        entries = [(shard["file"], shard["count"]) for shard in index["shards"]]
        classes = tuple(str(name) for name in index.get("classes", []))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{index_file} is not a shard index ({_short(error)}); write the folder with "
            "byol shard DATA --out FOLDER"
        ) from error
    files = tuple(_check_entry(root, index_file, name, count) for name, count in entries)
    counts = tuple(int(count) for _, count in entries)
    missing = [name for name in files if not (root / name).is_file()]
    if missing:
        raise ValueError(f"shard folder {root} lacks {', '.join(missing[:3])}; write it again")
    for name, count in zip(files, counts, strict=True):
        real = count_shard_images(root / name)
        if real != count:
            raise ValueError(
                f"{index_file} says {name} holds {count} images but it holds {real}; the index "
                "was edited or the shard replaced: write the folder again with byol shard"
            )
    return ShardSet(root, files, counts, classes)


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


def _check_entry(root: Path, index_file: Path, name: object, count: object) -> str:
    """A shard entry's file name, refused unless a plain name inside ``root``."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(
            f"{index_file} names the shard {str(name)[:80]!r}; shard files must be plain names "
            "inside the shard folder (no paths): write the folder again with byol shard"
        )
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(
            f"{index_file} gives {name} the count {str(count)[:40]!r}; counts are non-negative "
            "integers: write the folder again with byol shard"
        )
    if (root / name).resolve().parent != root.resolve():
        raise ValueError(f"{index_file}: shard {name} lies outside {root} (a link?)")
    return name


def count_shard_images(path: Path) -> int:
    """Images in one tar: the distinct keys of its non-``.cls`` members (headers only)."""
    keys = set()
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                stem, _, extension = member.name.rsplit("/", 1)[-1].partition(".")
                if member.isfile() and extension != "cls":
                    keys.add(stem)
    except (OSError, tarfile.TarError) as error:
        raise ValueError(f"shard {path} is not a readable tar ({_short(error)})") from error
    return len(keys)


def write_shards(
    source: ImageSource, out: str | os.PathLike[str], images_per_shard: int
) -> ShardSet:
    """Write ``source`` (a resolved split) as shards of ``images_per_shard`` images into ``out``.

    Files are copied byte for byte (no re-encoding); in-memory arrays become PNG. Files that
    training would skip (every file is decoded once, as the cache does) are left out and
    listed in the result's ``skipped``. The folder is written under a temporary name and
    renamed into place as a whole, so an interrupted run leaves nothing that looks complete
    (and its temporary is removed by the next run). Raises ``ValueError`` if ``out`` already
    holds shards or other files, or when no file is readable.
    """
    if isinstance(images_per_shard, bool) or images_per_shard < 1:
        raise ValueError(f"images_per_shard={images_per_shard} must be at least 1")
    root = Path(out).expanduser()
    if is_shard_folder(root):
        raise ValueError(f"{root} already holds shards; choose another --out folder")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ValueError(f"{root} already exists and is not empty; choose a new --out folder")
    samples, num_images, skipped = _readable_samples(source)
    labelled = source.has_labels
    digits = max(KEY_DIGITS, len(str(num_images - 1)))
    files: list[str] = []
    counts: list[int] = []
    with atomic_folder(root) as staging:
        for first in range(0, num_images, images_per_shard):
            name = f"shard-{len(files):06d}.tar"
            count = min(images_per_shard, num_images - first)
            with (
                (staging / name).open("wb") as handle,
                tarfile.open(fileobj=handle, mode="w") as tar,
            ):
                for index in range(first, first + count):
                    extension, data, label = next(samples)
                    key = f"{index:0{digits}d}"
                    _add_member(tar, f"{key}.{extension}", data)
                    if labelled:
                        _add_member(tar, f"{key}.cls", str(label).encode())
            files.append(name)
            counts.append(count)
        manifest = {
            "format": SHARD_FORMAT,
            "num_images": num_images,
            "classes": list(source.classes),
            "shards": [{"file": f, "count": c} for f, c in zip(files, counts, strict=True)],
        }
        (staging / SHARD_INDEX).write_text(json.dumps(manifest, indent=1) + "\n")
        for file in staging.iterdir():
            file.chmod(file_mode())
    return ShardSet(root, tuple(files), tuple(counts), tuple(source.classes), tuple(skipped))


def _readable_samples(
    source: ImageSource,
) -> tuple[Iterator[tuple[str, bytes, int]], int, list[tuple[str, str]]]:
    """The samples of ``source`` that training can decode, their number, and the skipped
    ``(path, reason)``."""
    if source.scan is None:
        return _encoded_samples(source), source.num_images, []
    reasons = check_images(source.scan.paths, "full", source.num_workers)
    keep = [i for i, reason in enumerate(reasons) if reason is None]
    skipped = [(source.scan.paths[i], r) for i, r in enumerate(reasons) if r is not None]
    if not keep:
        path, reason = skipped[0]
        raise ValueError(
            f"none of the {len(reasons)} image files of {source.name} can be read (e.g. {path}: "
            f"{reason}); check the files or point the source elsewhere"
        )
    readable = dataclasses.replace(source, scan=source.scan.subset(keep), num_images=len(keep))
    return _encoded_samples(readable), len(keep), skipped


def _encoded_samples(source: ImageSource) -> Iterator[tuple[str, bytes, int]]:
    """``(extension, file bytes, label)`` per image of ``source``, in its order."""
    if source.scan is not None:
        for path, label in zip(source.scan.paths, source.scan.labels, strict=True):
            extension = Path(path).suffix.lower().lstrip(".")
            yield ("jpg" if extension == "jpeg" else extension), Path(path).read_bytes(), label
        return
    if source.arrays is None:  # pragma: no cover - load_images always sets one of them
        raise ValueError(f"source {source.name!r} has neither files nor arrays")
    images, labels = source.arrays
    for image, label in zip(images, labels, strict=True):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        yield "png", buffer.getvalue(), int(label)


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)  # mtime, owner and mode stay 0: the same input gives the same bytes
    tar.addfile(info, io.BytesIO(data))


def read_shard(path: Path) -> Iterator[tuple[int, bytes, int]]:
    """``(image index, image bytes, label or -1)`` per image of one tar, read as a stream.

    As in WebDataset, the files of one image (same key, different extensions) are consecutive.
    """
    key: str | None = None
    parts: dict[str, bytes] = {}
    with tarfile.open(path, mode="r|") as tar:  # "r|": sequential, no seeking
        for member in tar:
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            stem, _, extension = member.name.rsplit("/", 1)[-1].partition(".")
            if stem != key:
                if key is not None:
                    yield _sample(path, key, parts)
                key, parts = stem, {}
            parts[extension] = handle.read()
    if key is not None:
        yield _sample(path, key, parts)


def _sample(path: Path, key: str, parts: dict[str, bytes]) -> tuple[int, bytes, int]:
    label = int(parts.pop("cls")) if "cls" in parts else -1
    if not key.isdigit() or len(parts) != 1:
        raise ValueError(
            f"shard {path}: sample {key!r} has files {sorted(parts)}; expected one image "
            "(and a .cls) under a numeric key"
        )
    return int(key), next(iter(parts.values())), label


def _shuffle_buffer(
    samples: Iterator[tuple[int, bytes, int]], size: int, generator: random.Random
) -> Iterator[tuple[int, bytes, int]]:
    """Approximate shuffle of a stream: each sample waits in a ``size`` buffer and leaves at a
    random moment (the buffer's raw bytes, not decoded images)."""
    buffer: list[tuple[int, bytes, int]] = []
    for sample in samples:
        if len(buffer) < size:
            buffer.append(sample)
            continue
        slot = generator.randrange(size)
        yield buffer[slot]
        buffer[slot] = sample
    generator.shuffle(buffer)
    yield from buffer


def _stream_seed(*parts: int) -> int:
    digest = hashlib.sha256(("byol-shard-stream:" + ":".join(map(str, parts))).encode()).digest()
    return int.from_bytes(digest[:8], "little")


class ShardStream(torch.utils.data.IterableDataset[Any]):
    """This rank's samples of one epoch, streamed from its shards; one worker's share each.

    Rank ``r`` of ``W`` owns shards ``r, r + W, ...``; DataLoader worker ``w`` of ``K`` owns
    every K-th of those. Each epoch a worker reads its shards in an order seeded by
    (seed, epoch, rank, worker) through a shuffle buffer of ``shuffle_buffer`` images, and
    yields exactly ``batches_per_worker`` batches' worth (the same on every rank and worker,
    so processes take the same number of steps and a DataLoader serves worker ``b % K`` for
    batch ``b``). Resuming at ``start_batch`` skips the images of the batches already served
    without decoding them. Images are decoded and passed to ``transform`` with the global
    generator seeded by ``seed_of(epoch, image index)``, so an image's views do not depend on
    which rank or worker reads it. Which images meet in a batch does depend on the number of
    processes and workers: resume with the same ones to continue an epoch exactly.
    """

    def __init__(
        self,
        shards: ShardSet,
        transform: Callable[[Image.Image], Any],
        seed_of: Callable[[int, int], int],
        *,
        local_batch_size: int,
        rank: int,
        world_size: int,
        num_workers: int,
        seed: int,
        shuffle_buffer: int = 1000,
    ) -> None:
        self.shards, self.transform, self.seed_of = shards, transform, seed_of
        self.local_batch_size, self.rank, self.seed = local_batch_size, rank, seed
        self.workers = max(1, num_workers)
        self.shuffle_buffer = shuffle_buffer
        self.epoch, self.start_batch = 0, 0
        self.skipped: list[tuple[str, str]] = []
        shard_ids = list(range(len(shards.files)))
        owned = [
            [shard_ids[r::world_size][w :: self.workers] for w in range(self.workers)]
            for r in range(world_size)
        ]
        if any(not shard_list for rank_lists in owned for shard_list in rank_lists):
            raise ValueError(
                f"{len(shards.files)} shards cannot feed {world_size} processes x "
                f"{self.workers} data workers (each needs at least one shard); write smaller "
                "shards (byol shard --images-per-shard) or lower data.num_workers"
            )
        self.worker_shards = owned[rank]
        # Every rank computes the minimum over all ranks, so all agree without communicating.
        self.batches_per_worker = min(
            sum(shards.counts[i] for i in shard_list) // local_batch_size
            for rank_lists in owned
            for shard_list in rank_lists
        )
        if self.batches_per_worker < 1:
            raise ValueError(
                f"a data worker's shards hold fewer than {local_batch_size} images (one batch "
                "per process); write larger shards, lower data.num_workers or optim.batch_size"
            )

    @property
    def batches_per_epoch(self) -> int:
        return self.batches_per_worker * self.workers

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        if not 0 <= start_batch <= self.batches_per_epoch:
            raise ValueError(f"start_batch={start_batch} is outside the epoch")
        self.epoch, self.start_batch = epoch, start_batch

    def samples(self, worker: int) -> Iterator[tuple[int, bytes, int]]:
        """Worker ``worker``'s ``(index, bytes, label)`` of the epoch, after the resume skip."""
        generator = random.Random(_stream_seed(self.seed, self.epoch, self.rank, worker))
        order = list(self.worker_shards[worker])
        generator.shuffle(order)
        # Batch b of the epoch came from worker b % K: this worker served ceil((b0 - w) / K).
        served = max(0, -(-(self.start_batch - worker) // self.workers))
        skip = served * self.local_batch_size
        total = self.batches_per_worker * self.local_batch_size
        shuffled = _shuffle_buffer(
            (s for i in order for s in read_shard(self.shards.root / self.shards.files[i])),
            self.shuffle_buffer,
            generator,
        )
        for position, sample in enumerate(shuffled):
            if position >= total:
                break
            if position >= skip:
                yield sample

    def __iter__(self) -> Iterator[Any]:
        """Decoded, transformed images; one that cannot be decoded (corrupt bytes, a
        decompression bomb) is skipped with a :class:`SkippedImagesWarning`, counted in
        ``skipped`` and replaced by the next readable image, as folders do, so every worker
        still yields its fixed number of images."""
        info = torch.utils.data.get_worker_info()
        worker = 0 if info is None else info.id
        failed: list[int] = []
        image = None
        for index, data, _ in self.samples(worker):
            try:
                image = open_rgb(io.BytesIO(data))
            except Exception as error:  # decoder failures vary by format
                self._skip(index, describe_error(error))
                failed.append(index)
                continue
            for seed_index in [*failed, index]:  # the substitutes keep their own seeds
                # torchvision transforms draw from the global generator of the worker process.
                torch.manual_seed(self.seed_of(self.epoch, seed_index))
                yield self.transform(image)
            failed = []
        if failed and image is not None:
            for seed_index in failed:
                torch.manual_seed(self.seed_of(self.epoch, seed_index))
                yield self.transform(image)
        elif failed:
            raise ValueError(
                f"no image of this data worker's shards in {self.shards.root} can be decoded "
                f"(e.g. image {failed[0]}); check the shards or write them again with byol shard"
            )

    def _skip(self, index: int, reason: str) -> None:
        # Recorded in this process only (DataLoader workers keep their own copy).
        self.skipped.append((f"{self.shards.root} image {index}", reason))
        warnings.warn(
            f"image {index} in the shards of {self.shards.root} cannot be decoded ({reason}); "
            "using the next image instead",
            SkippedImagesWarning,
            stacklevel=3,
        )
