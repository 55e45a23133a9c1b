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

import hashlib
import io
import json
import os
import random
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from byol.data.registry import ImageSource

SHARD_INDEX = "shards.json"
SHARD_FORMAT = "byol-shards/1"
KEY_DIGITS = 6


@dataclass(frozen=True)
class ShardSet:
    """A shard folder: ``files`` (names in ``root``), images per shard, class names."""

    root: Path
    files: tuple[str, ...]
    counts: tuple[int, ...]
    classes: tuple[str, ...]

    @property
    def num_images(self) -> int:
        return sum(self.counts)


def is_shard_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder written by :func:`write_shards`."""
    return (Path(path).expanduser() / SHARD_INDEX).is_file()


def read_shard_set(path: str | os.PathLike[str]) -> ShardSet:
    """Read ``path/shards.json``; raises ``ValueError`` naming what is wrong or missing."""
    root = Path(path).expanduser()
    try:
        index = json.loads((root / SHARD_INDEX).read_text())
        files = tuple(str(shard["file"]) for shard in index["shards"])
        counts = tuple(int(shard["count"]) for shard in index["shards"])
        classes = tuple(str(name) for name in index.get("classes", []))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{root / SHARD_INDEX} is not a shard index ({error}); write the folder with "
            "byol shard DATA --out FOLDER"
        ) from error
    missing = [name for name in files if not (root / name).is_file()]
    if missing:
        raise ValueError(f"shard folder {root} lacks {', '.join(missing[:3])}; write it again")
    return ShardSet(root, files, counts, classes)


def write_shards(
    source: ImageSource, out: str | os.PathLike[str], images_per_shard: int
) -> ShardSet:
    """Write ``source`` (a resolved split) as shards of ``images_per_shard`` images into ``out``.

    Files are copied byte for byte (no re-encoding); in-memory arrays become PNG. Each shard is
    written to a temporary file and renamed, and the index last, so an interrupted run leaves
    no folder that looks complete. Raises ``ValueError`` if ``out`` already holds shards.
    """
    if isinstance(images_per_shard, bool) or images_per_shard < 1:
        raise ValueError(f"images_per_shard={images_per_shard} must be at least 1")
    root = Path(out).expanduser()
    if is_shard_folder(root):
        raise ValueError(f"{root} already holds shards; choose another --out folder")
    root.mkdir(parents=True, exist_ok=True)
    samples = _encoded_samples(source)
    labelled = source.has_labels
    digits = max(KEY_DIGITS, len(str(source.num_images - 1)))
    files: list[str] = []
    counts: list[int] = []
    for first in range(0, source.num_images, images_per_shard):
        name = f"shard-{len(files):06d}.tar"
        count = min(images_per_shard, source.num_images - first)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.partial-", dir=root)
        with os.fdopen(descriptor, "wb") as handle, tarfile.open(fileobj=handle, mode="w") as tar:
            for index in range(first, first + count):
                extension, data, label = next(samples)
                key = f"{index:0{digits}d}"
                _add_member(tar, f"{key}.{extension}", data)
                if labelled:
                    _add_member(tar, f"{key}.cls", str(label).encode())
        os.replace(temporary, root / name)
        files.append(name)
        counts.append(count)
    manifest = {
        "format": SHARD_FORMAT,
        "num_images": source.num_images,
        "classes": list(source.classes),
        "shards": [{"file": f, "count": c} for f, c in zip(files, counts, strict=True)],
    }
    (root / SHARD_INDEX).write_text(json.dumps(manifest, indent=1) + "\n")
    return ShardSet(root, tuple(files), tuple(counts), tuple(source.classes))


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
        info = torch.utils.data.get_worker_info()
        worker = 0 if info is None else info.id
        for index, data, _ in self.samples(worker):
            image = Image.open(io.BytesIO(data)).convert("RGB")
            # torchvision transforms draw from the global generator of the worker process.
            torch.manual_seed(self.seed_of(self.epoch, index))
            yield self.transform(image)
