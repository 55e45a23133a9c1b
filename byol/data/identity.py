"""What a run trained on: image count and a fingerprint of the data, kept in checkpoints.

The fingerprint of a folder is the sha256 of its sorted relative file names (as bytes, so any
name works) and byte sizes, one ``stat`` per file; of a shard folder, its shard names, counts
and byte sizes; of an embedded or downloaded dataset, its name, split, shape and labels. A
resume compares both with the checkpoint's and refuses other data unless told to accept it.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from byol.data.registry import ImageSource
from byol.data.shards import ShardSet


def data_identity(source: ImageSource | ShardSet, num_images: int) -> dict[str, Any]:
    """``{"source", "num_images", "fingerprint"}`` of the training data (``num_images``: the
    images trained on, unreadable files excluded)."""
    digest = hashlib.sha256()
    if isinstance(source, ShardSet):
        name = str(source.root)
        for file, count in zip(source.files, source.counts, strict=True):
            size = _size(os.path.join(source.root, file))
            digest.update(f"{file}\t{count}\t{size}\n".encode())
    elif source.scan is not None:
        name = source.scan.root
        prefix = source.scan.root.rstrip(os.sep) + os.sep
        for path in sorted(source.scan.paths):
            relative = path.removeprefix(prefix)
            digest.update(os.fsencode(relative) + f"\t{_size(path)}\n".encode())
    else:
        name = f"{source.name}/{source.split}"
        images, labels = source.arrays if source.arrays is not None else (None, None)
        digest.update(f"{name}\t{source.num_images}\t{getattr(images, 'shape', None)}".encode())
        if labels is not None:
            digest.update(labels.tobytes())
    return {"source": name, "num_images": num_images, "fingerprint": digest.hexdigest()}


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def data_difference(saved: Any, current: dict[str, Any]) -> str | None:
    """How ``current`` differs from a checkpoint's ``saved`` identity, or None when it does not
    (or when the checkpoint records none, as older ones do)."""
    if not isinstance(saved, dict) or "fingerprint" not in saved:
        return None
    differences = []
    if saved.get("num_images") != current["num_images"]:
        differences.append(f"{saved.get('num_images')} images then, {current['num_images']} now")
    if saved.get("fingerprint") != current["fingerprint"]:
        old, new = str(saved.get("fingerprint"))[:12], current["fingerprint"][:12]
        differences.append(f"file names or sizes differ (fingerprint {old} -> {new})")
    return "; ".join(differences) or None
