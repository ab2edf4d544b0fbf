"""Files that hold names, addresses or keys are readable by Comptoir's own user only.

Created with their mode (0600 files, 0700 folders) rather than changed afterwards, so there
is no moment when another local user could open them, whatever the process umask.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folder(path: Path | str) -> Path:
    """Make the folder (and its parents) if needed; the folder itself is 0700.

    A shared sticky folder (/tmp, /var/tmp) is left as it is: a database file put straight
    into /tmp must not close /tmp to every other user of the machine.
    """
    folder = Path(path)
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    # A folder of ours an older version created with the default mode: closed now.
    status = folder.stat()
    shared = status.st_mode & stat.S_ISVTX
    if status.st_mode & 0o077 and status.st_uid == os.getuid() and not shared:
        folder.chmod(FOLDER_MODE)
    return folder


def open_private(path: Path | str, mode: str = "w", **options: Any) -> IO[Any]:
    """Open a new file for writing, created 0600; a file already there is replaced.

    `mode` is "w" or "wb"; `options` go to open() (encoding, newline).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"open_private writes new files only, not mode {mode!r}")
    target = Path(path)
    # Removed first: O_CREAT keeps the mode of a file that exists, which may be 0644.
    target.unlink(missing_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        return os.fdopen(fd, mode, **options)
    except BaseException:
        os.close(fd)
        raise


def write_private(path: Path | str, data: bytes | str) -> None:
    """Write the whole file at once, created 0600."""
    if isinstance(data, str):
        with open_private(path, "w", encoding="utf-8") as out:
            out.write(data)
    else:
        with open_private(path, "wb") as out:
            out.write(data)
