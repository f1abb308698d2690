"""The blocking half of the folder store: contained, durable file operations.

Every method blocks; :mod:`.folder` runs them on its executor. Paths are
never built from unchecked input: keys arrive parsed (:class:`BlobKey`), and
each folder below ``blobs/`` is opened relative to its parent's descriptor
with ``O_NOFOLLOW``, so no symlink, planted before or during a call, can
lead a write or delete out of the root. ``OSError`` becomes
``BlobStoreUnavailable`` here, naming the errno, never a secret.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from carebridge.storage.blobs.base import (
    MAX_KEY_DEPTH,
    BlobInfo,
    BlobKey,
    FolderConfig,
    parse_key,
)
from carebridge.storage.errors import (
    BlobExists,
    BlobNotFound,
    BlobStoreUnavailable,
    StorageError,
)

DIR_MODE = 0o700
FILE_MODE = 0o600
STAGING_SUFFIX = ".part"
LIST_BATCH = 1000  # directory entries per executor round trip; bounds listing memory

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class FolderListing:
    """The entries of one folder, read through a descriptor held until :meth:`close`.

    ``os.scandir(fd)`` stats entries relative to *fd* itself, so the
    descriptor must outlive the iteration.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._entries = os.scandir(fd)

    def __iter__(self) -> Iterator[os.DirEntry[str]]:
        return self._entries  # the same iterator each time: batches resume where they stopped

    def close(self) -> None:
        self._entries.close()
        os.close(self._fd)


def unavailable(doing: str, exc: OSError) -> BlobStoreUnavailable:
    code = errno.errorcode.get(exc.errno or 0, "OSError")
    return BlobStoreUnavailable(f"blob folder: {doing} failed: {code} ({exc.strerror})")


def _open_child_dir(parent_fd: int, name: str) -> int | None:
    """Open folder *name* under *parent_fd* without following a symlink.

    Returns ``None`` if it is missing or is a file. Raises
    ``BlobStoreUnavailable`` for a symlink and ``OSError`` otherwise.
    """
    try:
        return os.open(name, _OPEN_DIR, dir_fd=parent_fd)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        if stat.S_ISLNK(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode):
            raise BlobStoreUnavailable(
                f"blob folder: {name!r} is a symlink; refusing to follow it out of the root"
            ) from None
        return None


def _make_child_dir(parent_fd: int, name: str, *, fsync: bool) -> int:
    """Create (0700) if needed and open folder *name* under *parent_fd*, symlink-free.

    Raises ``StorageError`` if a file holds the name (a key cannot be both a
    blob and a folder of blobs), ``BlobStoreUnavailable`` for a symlink.
    """
    try:
        os.mkdir(name, DIR_MODE, dir_fd=parent_fd)
    except FileExistsError:
        pass
    else:
        if fsync:  # the new entry must survive a crash, like the blob going into it
            os.fsync(parent_fd)
    fd = _open_child_dir(parent_fd, name)
    if fd is None:
        raise StorageError(f"blob folder: {name!r} is a file (a blob), so it cannot hold blobs")
    return fd


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise unavailable("writing a staged upload", exc) from exc


def pread(fd: int, size: int, offset: int) -> bytes:
    try:
        return os.pread(fd, size, offset)
    except OSError as exc:
        raise unavailable("reading a blob", exc) from exc


class FolderFiles:
    """Handles on ``root/blobs`` and ``root/staging``, and the operations on them."""

    def __init__(self, root: Path, blobs_fd: int, staging_fd: int, *, fsync: bool) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self._blobs_fd = blobs_fd
        self._staging_fd = staging_fd
        self._fsync = fsync

    @classmethod
    def open(cls, config: FolderConfig) -> FolderFiles:
        """Create (0700) and open ``blobs/`` and ``staging/`` under *config.root*.

        Raises ``BlobStoreUnavailable`` if that fails or either is a symlink.
        """
        try:
            root = config.root.resolve()  # the root itself may be a symlink: the operator's choice
            root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            root_fd = os.open(root, _OPEN_DIR)
            try:
                blobs_fd = _make_child_dir(root_fd, "blobs", fsync=config.fsync)
                try:
                    staging_fd = _make_child_dir(root_fd, "staging", fsync=config.fsync)
                except BaseException:
                    os.close(blobs_fd)
                    raise
            finally:
                os.close(root_fd)
        except OSError as exc:
            raise unavailable(f"preparing {config.root}", exc) from exc
        return cls(root, blobs_fd, staging_fd, fsync=config.fsync)

    def close(self) -> None:
        """Close both folder handles; the caller makes sure no call still uses them."""
        os.close(self._blobs_fd)
        os.close(self._staging_fd)

    def new_staging_file(self) -> tuple[str, int]:
        """Create ``staging/<random>.part`` (0600, exclusive); its name and write descriptor."""
        name = secrets.token_hex(16) + STAGING_SUFFIX
        try:
            return name, os.open(name, _NEW_FILE, FILE_MODE, dir_fd=self._staging_fd)
        except OSError as exc:
            raise unavailable("creating a staging file", exc) from exc

    def key_dir(self, bkey: BlobKey, *, create: bool) -> int:
        """Open the folder that holds *bkey*'s file; see :meth:`open_folders`."""
        return self.open_folders(bkey.segments[:-1], create=create)

    def open_folders(self, segments: tuple[str, ...], *, create: bool) -> int:
        """Open ``blobs/<segments>``, one ``O_NOFOLLOW`` step at a time from the held handle.

        Raises ``BlobNotFound`` if a folder on the way is missing and not
        *create*, ``BlobStoreUnavailable`` if one is a symlink.
        """
        fd = self._blobs_fd  # held, never closed here; each folder below it is ours to close
        for segment in segments:
            try:
                if create:
                    child: int | None = _make_child_dir(fd, segment, fsync=self._fsync)
                else:
                    child = _open_child_dir(fd, segment)
            finally:
                if fd != self._blobs_fd:
                    os.close(fd)
            if child is None:
                raise BlobNotFound(f"no blob folder {'/'.join(segments)}: no blob below it")
            fd = child
        return os.dup(fd) if fd == self._blobs_fd else fd

    def commit(self, fd: int, staging_name: str, bkey: BlobKey) -> None:
        """fsync and close *fd*, link the staging file to *bkey*, fsync both folders.

        Takes ownership of *fd* and the staging file: both are gone afterwards,
        whatever happens. Raises ``BlobExists`` if the key's name is taken (a
        blob, or anything else: ``link(2)`` never replaces), ``StorageError``
        or ``BlobStoreUnavailable``.
        """
        try:
            try:
                if self._fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            dir_fd = self.key_dir(bkey, create=True)
            try:
                try:
                    os.link(staging_name, bkey.segments[-1], src_dir_fd=self._staging_fd,
                            dst_dir_fd=dir_fd, follow_symlinks=False)
                except FileExistsError:
                    raise BlobExists(f"a blob already exists at key {bkey}") from None
                if self._fsync:
                    os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise unavailable(f"committing blob {bkey}", exc) from exc
        finally:
            self.discard(None, staging_name)

    def discard(self, fd: int | None, staging_name: str) -> None:
        """Close *fd* (if any) and remove the staging file; never raises for the file."""
        if fd is not None:
            os.close(fd)
        # A staging file we fail to remove is harmless: sweep_staging takes it later.
        with suppress(OSError):
            os.unlink(staging_name, dir_fd=self._staging_fd)
            if self._fsync:
                os.fsync(self._staging_fd)

    def stat_blob(self, bkey: BlobKey) -> tuple[Path, int]:
        """The path and size of *bkey*'s file: ``BlobNotFound``, ``BlobStoreUnavailable``."""
        try:
            dir_fd = self.key_dir(bkey, create=False)  # BlobNotFound passes through
            try:
                st = os.stat(bkey.segments[-1], dir_fd=dir_fd, follow_symlinks=False)
            finally:
                os.close(dir_fd)
        except FileNotFoundError:
            raise BlobNotFound(f"no blob at key {bkey}") from None
        except OSError as exc:
            raise unavailable(f"opening blob {bkey}", exc) from exc
        if not stat.S_ISREG(st.st_mode):
            raise BlobNotFound(f"no blob at key {bkey}")
        # sendfile (or nginx) opens by path, so the path must lead to the file the walk
        # checked: the same inode. One lstat, where resolve() took a Python loop of them
        # (~14% of a small download's event loop); the root was resolved once, at open.
        path = self.blobs.joinpath(*bkey.segments)
        try:
            by_path = os.stat(path, follow_symlinks=False)
        except OSError:
            by_path = None
        if by_path is None or (by_path.st_dev, by_path.st_ino) != (st.st_dev, st.st_ino):
            raise BlobStoreUnavailable(f"blob folder: the path of key {bkey} does not lead to its file "
                                       "(the folder was moved or a symlink planted since it was opened)")
        return path, st.st_size

    def delete(self, bkey: BlobKey) -> None:
        """Unlink *bkey*'s file if there is one; ``BlobStoreUnavailable``."""
        try:
            try:
                dir_fd = self.key_dir(bkey, create=False)
            except BlobNotFound:
                return
            try:
                os.unlink(bkey.segments[-1], dir_fd=dir_fd)
                if self._fsync:
                    os.fsync(dir_fd)
            except (FileNotFoundError, IsADirectoryError):
                return  # nothing there, or a folder of other blobs: no blob at this key
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise unavailable(f"deleting blob {bkey}", exc) from exc

    def sweep(self, cutoff: float) -> int:
        """Unlink ``.part`` files last written before *cutoff* (epoch seconds); the count."""
        removed = 0
        try:
            with os.scandir(self._staging_fd) as entries:
                for entry in entries:
                    if not entry.name.endswith(STAGING_SUFFIX) or not entry.is_file(follow_symlinks=False):
                        continue
                    if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                        continue
                    with suppress(FileNotFoundError):  # its writer committed or aborted meanwhile
                        os.unlink(entry.name, dir_fd=self._staging_fd)
                        removed += 1
            if removed and self._fsync:
                os.fsync(self._staging_fd)
        except OSError as exc:
            raise unavailable("sweeping the staging folder", exc) from exc
        return removed

    def scandir(self, rel: tuple[str, ...]) -> FolderListing | None:
        """Entries of ``blobs/<rel>`` (``None`` if it is gone); ``BlobStoreUnavailable``."""
        try:
            try:
                fd = self.open_folders(rel, create=False)
            except BlobNotFound:
                return None
            try:
                return FolderListing(fd)
            except BaseException:
                os.close(fd)
                raise
        except OSError as exc:
            raise unavailable("listing blobs", exc) from exc

    def next_batch(self, entries: FolderListing, rel: tuple[str, ...]) -> list[BlobInfo | str]:
        """Up to :data:`LIST_BATCH` items: a :class:`BlobInfo` per blob, a name per subfolder."""
        batch: list[BlobInfo | str] = []
        try:
            for entry in entries:
                try:
                    key = str(parse_key("/".join((*rel, entry.name))))
                except ValueError:
                    continue  # not ours (a stray file an operator left): never list it as a blob
                if entry.is_dir(follow_symlinks=False) and len(rel) + 1 < MAX_KEY_DEPTH:
                    batch.append(entry.name)
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    batch.append(BlobInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)))
                if len(batch) >= LIST_BATCH:
                    break
        except OSError as exc:
            raise unavailable("listing blobs", exc) from exc
        return batch
