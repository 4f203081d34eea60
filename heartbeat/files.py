"""Reading the small text files an operator points the job at (INI, config.php).

One careful reader, so that every way a file can be wrong (missing, a directory, not
readable by the job's user, binary, not UTF-8, absurdly large) becomes the same kind of
one-line ConfigError naming the path and the fix.
"""

from __future__ import annotations

import codecs
import os
import pwd
import stat

from heartbeat.errors import ConfigError


def read_text_file(path: str, *, limit: int, hint: str, what: str = "file") -> tuple[str, int]:
    """Read a small UTF-8 text file; return its text and its ``st_mode``.

    Every way this can go wrong becomes one ConfigError naming ``path`` and ending in
    ``hint`` (how to fix it). The size ``limit`` guards against pointing the job at a
    log or a device; ``what`` names the kind of file in messages.
    """
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise ConfigError(f"{path}: is a directory, not a {what}; {hint}")
            data = handle.read(limit + 1)
    except ConfigError:
        raise
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigError(f"{path}: no such {what}; {hint}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a {what}; {hint}") from None
    except PermissionError:
        raise ConfigError(
            f"{path}: permission denied for user {current_user()}; let that user read it "
            f"(e.g. chgrp <the job's group> {path} && chmod 0640 {path})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc}); {hint}") from None
    if len(data) > limit:
        raise ConfigError(f"{path}: is larger than {limit} bytes, too big for a {what}; {hint}")
    if b"\x00" in data:
        raise ConfigError(f"{path}: is a binary file (it holds NUL bytes), not a {what}; {hint}")
    try:
        text = codecs.decode(data, "utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: is not UTF-8 text (first bad byte on line {line}); save it as UTF-8"
        ) from None
    return text, info.st_mode


def current_user() -> str:
    """The effective user's name, for "permission denied" messages."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # pragma: no cover - a uid without a passwd entry
        return str(os.geteuid())
