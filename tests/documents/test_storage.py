"""The local document store: written once, readable by Comptoir's user only."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from web.documents.storage import InvalidKey, KeyExists, KeyMissing, LocalStorage


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_key_is_written_once_and_read_back(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "documents")
    storage.put("delivery_note/2026/BL-2026-000001.pdf", b"%PDF first")

    with pytest.raises(KeyExists):
        storage.put("delivery_note/2026/BL-2026-000001.pdf", b"%PDF forged")

    assert storage.get("delivery_note/2026/BL-2026-000001.pdf") == b"%PDF first"
    assert storage.exists("delivery_note/2026/BL-2026-000001.pdf")
    assert not storage.exists("delivery_note/2026/BL-2026-000002.pdf")
    with pytest.raises(KeyMissing):
        storage.get("delivery_note/2026/BL-2026-000002.pdf")
    # No temporary file left behind by the refused write.
    assert os.listdir(tmp_path / "documents" / "delivery_note" / "2026") == ["BL-2026-000001.pdf"]


def test_files_are_0600_and_folders_0700_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o002)
    try:
        LocalStorage(tmp_path / "documents").put("delivery_note/2026/a.pdf", b"%PDF")
    finally:
        os.umask(previous)
    assert mode(tmp_path / "documents") == 0o700
    assert mode(tmp_path / "documents" / "delivery_note") == 0o700
    assert mode(tmp_path / "documents" / "delivery_note" / "2026") == 0o700
    assert mode(tmp_path / "documents" / "delivery_note" / "2026" / "a.pdf") == 0o600


@pytest.mark.parametrize(
    "key",
    ["../outside.pdf", "/etc/passwd", "a/../../b.pdf", "a//b.pdf", "", ".hidden", "a/b/", "é.pdf"],
)
def test_keys_stay_inside_the_folder(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "documents")
    with pytest.raises(InvalidKey):
        storage.put(key, b"x")
    with pytest.raises(InvalidKey):
        storage.get(key)
    assert not (tmp_path / "outside.pdf").exists()


def test_two_writers_of_one_key_one_wins(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "documents")
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def write(index: int) -> None:
        start.wait(timeout=10)
        try:
            storage.put("k.pdf", f"writer {index}".encode())
            outcomes.append("stored")
        except KeyExists:
            outcomes.append("refused")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["stored"]
    assert storage.get("k.pdf").startswith(b"writer ")
