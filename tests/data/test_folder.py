from __future__ import annotations

import os
from pathlib import Path

import pytest

from byol.data.folder import IMAGE_EXTENSIONS, scan_folder
from tests.helpers import solid_image


def relative(paths: tuple[str, ...], root: Path) -> list[str]:
    return [Path(p).relative_to(root.resolve()).as_posix() for p in paths]


def test_class_folders_give_sorted_classes_and_labels(tmp_path: Path) -> None:
    # Created in reverse order: the result must not depend on creation order.
    solid_image(tmp_path / "zebra" / "b.PNG", (1, 2, 3))
    solid_image(tmp_path / "zebra" / "a.jpg", (1, 2, 3))
    solid_image(tmp_path / "ant" / "deep" / "er" / "x.WebP", (1, 2, 3))
    solid_image(tmp_path / "ant" / "y.Tiff", (1, 2, 3))
    solid_image(tmp_path / "bee" / "z.BMP", (1, 2, 3))
    (tmp_path / "bee" / "notes.txt").write_text("not an image")
    solid_image(tmp_path / "bee" / ".hidden.jpg", (1, 2, 3))
    solid_image(tmp_path / ".ipynb_checkpoints" / "c.jpg", (1, 2, 3))

    scan = scan_folder(tmp_path)

    assert relative(scan.paths, tmp_path) == [
        "ant/deep/er/x.WebP",
        "ant/y.Tiff",
        "bee/z.BMP",
        "zebra/a.jpg",
        "zebra/b.PNG",
    ]
    assert scan.classes == ("ant", "bee", "zebra")
    assert scan.labels == (0, 0, 1, 2, 2)
    assert scan.has_labels
    assert scan_folder(tmp_path) == scan


def test_image_at_top_level_means_no_labels(tmp_path: Path) -> None:
    solid_image(tmp_path / "cats" / "a.png", (1, 2, 3))
    solid_image(tmp_path / "loose.jpeg", (1, 2, 3))

    scan = scan_folder(tmp_path)

    assert relative(scan.paths, tmp_path) == ["cats/a.png", "loose.jpeg"]
    assert scan.classes == ()
    assert scan.labels == (-1, -1)
    assert not scan.has_labels


def test_every_extension_in_any_case_is_found(tmp_path: Path) -> None:
    for i, extension in enumerate(IMAGE_EXTENSIONS):
        solid_image(tmp_path / f"{i}-lower{extension}", (9, 9, 9))
        (tmp_path / f"{i}-upper{extension.upper()}").write_bytes(
            (tmp_path / f"{i}-lower{extension}").read_bytes()
        )
    assert len(scan_folder(tmp_path)) == 2 * len(IMAGE_EXTENSIONS)


def test_symlink_loop_is_walked_once(tmp_path: Path) -> None:
    solid_image(tmp_path / "a" / "x.png", (1, 2, 3))
    os.symlink(tmp_path / "a", tmp_path / "a" / "loop")
    assert relative(scan_folder(tmp_path).paths, tmp_path) == ["a/x.png"]


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"folder '.*nowhere' does not exist"):
        scan_folder(tmp_path / "nowhere")


def test_file_instead_of_folder_is_a_clear_error(tmp_path: Path) -> None:
    image = solid_image(tmp_path / "a.png", (1, 2, 3))
    with pytest.raises(ValueError, match="is a file, not a folder"):
        scan_folder(image)


def test_folder_without_images_names_the_extensions(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "readme.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"holds no image files .*\.jpg \.jpeg \.png \.webp"):
        scan_folder(tmp_path)


def test_subset_keeps_labels_and_classes(tmp_path: Path) -> None:
    for name in ("a", "b"):
        for i in range(3):
            solid_image(tmp_path / name / f"{i}.png", (1, 2, 3))
    scan = scan_folder(tmp_path)
    part = scan.subset([1, 4])
    assert relative(part.paths, tmp_path) == ["a/1.png", "b/1.png"]
    assert part.labels == (0, 1)
    assert part.classes == ("a", "b")
