"""How the sandbox OSS server lays object keys out on disk (its bucket directories).

Place in the flow: oss_server.store keeps every object of a bucket as a file under `<root>/<bucket>`, and
Elasticsearch's `fs` repository writes the same directories straight to disk, so a key `a/b/c` must
stay the file `a/b/c`. OSS keys can also be what a plain file tree cannot hold: a key ending in `/`, a
key with `//` (an empty segment), the segments `.` and `..`, and a key that is also a prefix (`x` and
`x/y`). Those are stored with a reserved name prefix, MARK (`~oss~`), that neither Elasticsearch nor
the server's own state ever writes:

- an empty segment is the name `~oss~empty`, `.` is `~oss~dot`, `..` is `~oss~dotdot`;
- a segment that itself starts with MARK is escaped as `~oss~esc` + the segment;
- the object `x` when `x/` is also a prefix is the file `x/~oss~self` (SELF): writing `x/y` while the
  file `x` exists moves it there first, and writing `x` while the directory `x` exists writes there.

Limits that remain (a disk's, not OSS's): a stored segment name is at most 255 bytes, and a key may
not start with `/` (OSS refuses that too). Names under a bucket directory starting with MARK that
none of these rules produce are not keys and are never listed.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

MARK = "~oss~"
SELF = MARK + "self"
_SPECIAL = {"": MARK + "empty", ".": MARK + "dot", "..": MARK + "dotdot"}
_SPECIAL_BACK = {name: segment for segment, name in _SPECIAL.items()}
_ESCAPE = MARK + "esc"
MAX_KEY_BYTES = 1023
_MAX_NAME_BYTES = 255


class InvalidKey(ValueError):
    """A key that OSS refuses or that this disk layout cannot hold; str() says why."""


def segment_name(segment: str) -> str:
    """The file or directory name that stores one `/`-separated segment of a key."""
    if segment in _SPECIAL:
        return _SPECIAL[segment]
    return _ESCAPE + segment if segment.startswith(MARK) else segment


def name_segment(name: str) -> str | None:
    """The key segment a file or directory name stores; None for SELF and names that are no segment."""
    if not name.startswith(MARK):
        return name
    if name.startswith(_ESCAPE):
        return name[len(_ESCAPE) :]
    return _SPECIAL_BACK.get(name)


def check_key(key: str) -> list[str]:
    """The on-disk names of a key's segments; InvalidKey when OSS or this layout cannot store the key."""
    invalid = None
    names = [segment_name(part) for part in key.split("/")]
    if not key:
        invalid = "the object name is empty"
    elif len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        invalid = f"the object name is longer than {MAX_KEY_BYTES} bytes"
    elif "\x00" in key or any(0xD800 <= ord(c) <= 0xDFFF for c in key):
        invalid = "the object name holds a NUL or a lone surrogate"
    elif key.startswith("/"):
        invalid = "the object name starts with '/'"
    elif any(len(name.encode("utf-8")) > _MAX_NAME_BYTES for name in names):
        invalid = f"a path segment of the object name is longer than {_MAX_NAME_BYTES} bytes on this server's disk"
    if invalid:
        raise InvalidKey(invalid)
    return names


def disk_path(bucket_dir: str, key: str) -> str:
    """The path of a key before the SELF rule (InvalidKey as check_key)."""
    return os.path.join(bucket_dir, *check_key(key))


def object_file(bucket_dir: str, key: str) -> str:
    """The file that holds the object `key` if it exists: `<path>/~oss~self` when `<path>` is a directory."""
    path = disk_path(bucket_dir, key)
    return os.path.join(path, SELF) if os.path.isdir(path) else path


def prepare_write(bucket_dir: str, key: str, tmp_dir: str) -> str:
    """Create the parent directories of `key` (moving an object that sits where a directory must go to
    its SELF file) and return the file to write the object to. Not atomic against another writer of
    the same names: the server serialises calls."""
    names = check_key(key)
    parent = bucket_dir
    for name in names[:-1]:
        above, parent = parent, os.path.join(parent, name)
        if os.path.isfile(parent):
            tmp = os.path.join(tmp_dir, uuid.uuid4().hex)
            os.replace(parent, tmp)
            _mkdir_as(above, parent)
            os.replace(tmp, os.path.join(parent, SELF))
        else:
            with contextlib.suppress(FileExistsError):
                _mkdir_as(above, parent)
    path = os.path.join(parent, names[-1])
    return os.path.join(path, SELF) if os.path.isdir(path) else path


def _mkdir_as(parent: str, path: str) -> None:
    """Make a directory owned like its parent: a server run as root must not leave folders that the
    unprivileged Elasticsearch user, writing an `fs` repository in the same bucket, cannot write in."""
    os.mkdir(path)
    if os.geteuid() == 0:
        st = os.stat(parent)
        os.chown(path, st.st_uid, st.st_gid)


def walk(bucket_dir: str, prefix: str, after: str, roll_up_dirs: bool) -> Iterator[tuple[str, bool, str]]:
    """(key, is_common_prefix, file) for keys starting with prefix and greater than after, in UTF-8 byte
    order, walking only below the directory part of the prefix and skipping subtrees that lie wholly
    before `after`. With roll_up_dirs, directories at the prefix's level come back once, as common
    prefixes `dir/` (file ""), and their SELF objects as keys.

    Within a directory, sorting entries by key segment (objects) or segment + '/' (directories) puts
    every key of an earlier entry before every key of a later one, so a depth-first walk yields keys
    sorted; code point order of str equals UTF-8 byte order.
    """
    dir_part = prefix[: prefix.rfind("/") + 1]
    if dir_part.startswith("/"):
        return
    start = os.path.join(bucket_dir, *(segment_name(part) for part in dir_part.split("/")[:-1]))

    def visit(path: str, rel: str, top: bool) -> Iterator[tuple[str, bool, str]]:
        items = []  # (key or 'dir/' prefix, is_dir, disk path) still in range, taken in order from a heap
        try:
            with os.scandir(path) as it:
                entries = list(it)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return
        for entry in entries:
            segment = name_segment(entry.name)
            if segment is None:
                continue  # SELF (listed by the parent) or a name no key maps to
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            candidates = [(rel + segment + "/", True, entry.path)] if is_dir else [(rel + segment, False, entry.path)]
            if is_dir and os.path.isfile(os.path.join(entry.path, SELF)):
                candidates.append((rel + segment, False, os.path.join(entry.path, SELF)))
            for full, full_is_dir, full_path in candidates:
                if top and not full.startswith(prefix):
                    continue
                before = (full < after and not after.startswith(full)) if full_is_dir else full <= after
                if not before:  # else the key, or every key below the directory, lies at or before `after`
                    items.append((full, full_is_dir, full_path))
        items.sort()
        for full, is_dir, full_path in items:
            if not _is_utf8(full):
                continue  # a name no OSS key can spell
            if not is_dir:
                yield full, False, full_path
            elif top and roll_up_dirs:
                if full > after and _has_object(full_path, top=True):
                    yield full, True, ""
            else:
                yield from visit(full_path, full, False)

    yield from visit(start, dir_part, True)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_object(path: str, top: bool) -> bool:
    """Whether a directory holds an object below its own key (its own SELF file is not below it)."""
    try:
        with os.scandir(path) as it:
            for entry in it:
                if top and entry.name == SELF:
                    continue
                try:
                    if (entry.is_dir() and _has_object(entry.path, top=False)) or entry.is_file():
                        return True
                except OSError:
                    continue
    except OSError:
        return False
    return False
