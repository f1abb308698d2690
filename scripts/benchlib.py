"""What the benchmark scripts share (they import it as a sibling: ``scripts/`` is on sys.path)."""

from __future__ import annotations

import os


def file_system(path: str) -> str:
    """The type of the file system holding *path* (longest mount point in /proc/mounts)."""
    path, best, kind = os.path.realpath(path), "", "?"
    with open("/proc/mounts") as mounts:
        for line in mounts:
            _, point, fstype = line.split()[:3]
            if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                best, kind = point, fstype
    return kind
