"""Trust in a backup folder: an authenticated manifest, bounded reads, regular files only.

``SHA256SUMS`` sits next to the files it describes, so whoever can edit a dump can recompute
it: it catches accidents, not tampering. ``MANIFEST.hmac`` holds an HMAC-SHA256, keyed by the
environment variable that ``[backup] hmac_key_env`` names (never a file in ``BACKUP_DIR``),
over this text, computed from the files themselves and never from ``SHA256SUMS``::

    mssante-check backup manifest v1
    id YYYYMMDD_HHMMSS
    <name> <size in bytes> <sha256>        one line per data file, in a fixed order

The backup's id is inside, so an authentic older backup renamed to look newer is refused too.

Every file is opened without following symbolic links and must be a regular file with a single
link (a hard link to a file outside the folder would otherwise be read or overwritten as if it
were the backup's); the metadata files have a size bound, so a huge one is refused before it
is read or printed. ``config.tar.gz`` may hold only regular files and folders under relative
paths without ``..``.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
import tarfile
from pathlib import Path, PurePosixPath

from plugins import redaction
from plugins.profile import Profile

MANIFEST = "MANIFEST.hmac"
MANIFEST_HEADER = "mssante-check backup manifest v1"
MIN_KEY_CHARS = 16
METADATA_LIMIT = 64 * 1024            # version.txt, git-commit.txt, deployment-info.json, sums
FINGERPRINT_LIMIT = 64 * 1024 * 1024  # fingerprint.json: one line per table and Redis key
MAX_ARCHIVE_MEMBERS = 10_000
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024  # configuration files, unpacked: no gzip bomb
_MAC_LINE = re.compile(r"^hmac-sha256 ([0-9a-f]{64})\n?$")


class BackupError(RuntimeError):
    """A backup cannot be made, trusted or restored; the message says which file and why."""


class KeyMissing(BackupError):
    """No usable HMAC key: nothing can be signed or verified (bad input, exit code 4)."""


def hmac_key(profile: Profile) -> bytes:
    """The key from the variable ``[backup] hmac_key_env`` names (environment, then the
    profile's env_file); registered for redaction. Refused: undeclared, unset, too short."""
    section = profile.section("backup")
    var = section.get("hmac_key_env")
    where = f"{profile.path.name} [backup] hmac_key_env"
    if not var:
        raise KeyMissing(f"{where} is not set: backups are authenticated with an HMAC key read "
                         "from the environment variable it names")
    value = profile.lookup_env(var)
    if not value:
        raise KeyMissing(f"environment variable {var} (named by {where}) is not set: cannot "
                         "sign or verify a backup")
    redaction.register(value)
    if len(value) < MIN_KEY_CHARS:
        raise KeyMissing(f"environment variable {var} (named by {where}) is shorter than "
                         f"{MIN_KEY_CHARS} characters: too weak a backup HMAC key")
    return value.encode()


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def check_regular(path: Path, info: os.stat_result | None = None) -> os.stat_result:
    """``path`` (not followed if a link) is a regular file with one link, else BackupError."""
    info = info or os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise BackupError(f"{path}: {_kind(info.st_mode)}, refused (a backup holds regular "
                          "files only)")
    if info.st_nlink != 1:
        raise BackupError(f"{path}: has {info.st_nlink} hard links, refused (it may be a file "
                          "outside the backup)")
    return info


def open_regular(path: Path) -> int:
    """A read descriptor on ``path``: no link followed, no blocking open of a pipe, and the
    opened file itself checked (no race between the check and the open)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if os.path.islink(path):
            raise BackupError(f"{path}: a symbolic link, refused (a backup holds regular files "
                              "only)") from exc
        raise BackupError(f"{path}: cannot be read ({exc.strerror})") from exc
    try:
        check_regular(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bounded(path: Path, limit: int = METADATA_LIMIT) -> bytes:
    """The whole file, refused (never read) when it is larger than ``limit`` bytes."""
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        data = handle.read(limit + 1) if size <= limit else b""
    if size > limit or len(data) > limit:
        raise BackupError(f"{path.name}: {size} bytes, more than the {limit // 1024} KiB a "
                          "backup's metadata may hold: refused, not read")
    return data


def file_digest(path: Path) -> tuple[int, str]:
    """(size, SHA-256 hex) of a regular file, read without following links."""
    digest, size = hashlib.sha256(), 0
    with os.fdopen(open_regular(path), "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def manifest_text(backup_id: str, files: dict[str, tuple[int, str]]) -> bytes:
    """What the HMAC covers: the header, the id, then ``name size sha256`` per file."""
    lines = [MANIFEST_HEADER, f"id {backup_id}",
             *(f"{name} {size} {digest}" for name, (size, digest) in files.items())]
    return ("\n".join(lines) + "\n").encode()


def sign(key: bytes, backup_id: str, files: dict[str, tuple[int, str]]) -> str:
    """The content of MANIFEST.hmac."""
    mac = hmac.new(key, manifest_text(backup_id, files), hashlib.sha256).hexdigest()
    return f"hmac-sha256 {mac}\n"


def check_signature(key: bytes, backup_id: str, folder: Path,
                    files: dict[str, tuple[int, str]]) -> None:
    """MANIFEST.hmac must authenticate these files (sizes and digests measured, not read from
    SHA256SUMS); any difference, or another key, is a refusal."""
    match = _MAC_LINE.match(read_bounded(folder / MANIFEST).decode(errors="replace"))
    if not match:
        raise BackupError(f"backup {backup_id}: {MANIFEST} is malformed (expected one line "
                          "'hmac-sha256 <64 hex digits>')")
    expected = hmac.new(key, manifest_text(backup_id, files), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match.group(1)):
        raise BackupError(f"backup {backup_id}: {MANIFEST} does not authenticate its files: "
                          "a file (or SHA256SUMS) was changed by someone without the backup "
                          "HMAC key, or the key is not the one that signed it")


def check_archive(path: Path) -> list[tarfile.TarInfo]:
    """The regular-file members of a configuration archive; any link, device, absolute path
    or ``..`` refuses the whole archive (it could write outside the paths it restores)."""
    files, unpacked = [], 0
    try:
        with os.fdopen(open_regular(path), "rb") as raw, \
                tarfile.open(fileobj=raw, mode="r:gz") as archive:
            for count, member in enumerate(archive, start=1):
                unpacked += member.size
                if count > MAX_ARCHIVE_MEMBERS or unpacked > MAX_ARCHIVE_BYTES:
                    raise BackupError(f"{path.name}: more than {MAX_ARCHIVE_MEMBERS} members or "
                                      f"{MAX_ARCHIVE_BYTES >> 20} MiB unpacked, refused")
                name = PurePosixPath(member.name)
                shown = redaction.redact(member.name[:200])
                if name.is_absolute() or ".." in name.parts or not member.name:
                    raise BackupError(f"{path.name}: member '{shown}' lies outside the "
                                      "archive's folder (absolute path or '..'), refused")
                if member.issym() or member.islnk():
                    raise BackupError(f"{path.name}: member '{shown}' is a "
                                      f"{'symbolic' if member.issym() else 'hard'} link "
                                      f"(to '{redaction.redact(member.linkname[:200])}'), "
                                      "refused")
                if not (member.isfile() or member.isdir()):
                    raise BackupError(f"{path.name}: member '{shown}' is a device, pipe or "
                                      "other special file, refused")
                if member.isfile():
                    files.append(member)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{path.name}: not a readable gzipped tar archive ({exc})") from exc
    return files
