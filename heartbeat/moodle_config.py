"""Read the database settings out of Moodle's ``config.php`` as text.

Why a parser and not PHP: including ``config.php`` bootstraps Moodle, which refuses to
run from a CLI script that does not declare itself (that is how the PHP job broke), and
running PHP would tie the job to the web server's PHP set-up. A config.php is in
practice a list of ``$CFG->name = <literal>;`` statements, so a small tokenizer and a
parser for literals (strings, numbers, booleans, null, arrays) are enough.

What cannot be known without running PHP (a value computed by a function, a variable
inside a double-quoted string, an assignment inside an ``if``) is not guessed: the key
is marked as a *problem*, and the problem becomes a :class:`ConfigError` only if the
value is actually needed, i.e. if neither the INI file nor the environment sets it.
Messages never quote a password, nor a line of the file (it might hold one).
"""

from __future__ import annotations

import codecs
import os
import pwd
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NoReturn, Optional, Union

from heartbeat.errors import ConfigError

MAX_CONFIG_PHP_BYTES = 1024 * 1024
SUPPORTED_DBTYPES = ("mysqli", "mariadb", "auroramysql")

#: Fields of :class:`MoodleDbSettings` -> how config.php spells them (for messages).
PHP_NAMES: Mapping[str, str] = {
    "dbtype": "$CFG->dbtype",
    "host": "$CFG->dbhost",
    "name": "$CFG->dbname",
    "user": "$CFG->dbuser",
    "password": "$CFG->dbpass",
    "prefix": "$CFG->prefix",
    "port": "$CFG->dboptions['dbport']",
    "socket": "$CFG->dboptions['dbsocket']",
}

#: ``$CFG`` properties that matter -> the fields they feed.
_PROPERTY_FIELDS: Mapping[str, tuple[str, ...]] = {
    "dbtype": ("dbtype",),
    "dbhost": ("host",),
    "dbname": ("name",),
    "dbuser": ("user",),
    "dbpass": ("password",),
    "prefix": ("prefix",),
    "dboptions": ("port", "socket"),
}
_OPTION_FIELDS: Mapping[str, str] = {"dbport": "port", "dbsocket": "socket"}

#: Where the operator can set each value instead (named in the fix of a message).
_OVERRIDES: Mapping[str, str] = {
    "host": "[database] host or ALT42_DB_HOST",
    "name": "[database] name or ALT42_DB_NAME",
    "user": "[database] user or ALT42_DB_USER",
    "password": "[database] password or ALT42_DB_PASSWORD",
    "prefix": "[database] prefix or ALT42_DB_PREFIX",
    "port": "[database] port or ALT42_DB_PORT",
    "socket": "[database] socket or ALT42_DB_SOCKET",
}


# --------------------------------------------------------------------------- values


class Opaque:
    """A value PHP would compute at run time; ``reason`` says why it is not literal."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Opaque({self.reason!r})"


class PhpArray:
    """A PHP array literal: ordered keys, plus whether some keys could not be known."""

    __slots__ = ("_next_index", "items", "opaque_keys")

    def __init__(self) -> None:
        self.items: dict[Union[int, str], PhpValue] = {}
        self.opaque_keys = False
        self._next_index = 0

    def append(self, value: PhpValue) -> None:
        """``[value]``: PHP's next integer key."""
        self.set(self._next_index, value)

    def set(self, key: PhpValue, value: PhpValue) -> None:
        """``[key => value]`` with PHP's key normalisation ('3' -> 3, true -> 1, ...)."""
        norm: Union[int, str]
        if isinstance(key, bool):
            norm = int(key)
        elif isinstance(key, int):
            norm = key
        elif isinstance(key, float):
            norm = int(key)
        elif key is None:
            norm = ""
        elif isinstance(key, str):
            norm = int(key) if re.fullmatch(r"0|-?[1-9][0-9]*", key) else key
        else:  # an array or an opaque key: we cannot tell which key it is
            self.opaque_keys = True
            return
        self.items[norm] = value
        if isinstance(norm, int) and norm >= self._next_index:
            self._next_index = norm + 1

    def __repr__(self) -> str:
        return f"PhpArray({self.items!r}, opaque_keys={self.opaque_keys})"


PhpValue = Union[str, int, float, bool, None, PhpArray, Opaque]


@dataclass(frozen=True)
class MoodleDbSettings:
    """What a config.php says about the database; ``None`` means "not set there".

    ``problems`` maps a field to the message of why its value cannot be read as text;
    :meth:`require` raises it, so a problem only stops the job when the value is needed.
    """

    source: str
    dbtype: Optional[str] = None
    host: Optional[str] = None
    name: Optional[str] = None
    user: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    prefix: Optional[str] = None
    port: Optional[int] = None
    socket: Optional[str] = None
    problems: Mapping[str, str] = field(default_factory=dict, hash=False)

    def has(self, key: str) -> bool:
        """Whether config.php says something about ``key`` (a value or a problem)."""
        return key in self.problems or getattr(self, key) is not None

    def require(self, key: str) -> Union[str, int, None]:
        """The value of ``key``, or the ConfigError explaining why it cannot be read."""
        if key in self.problems:
            raise ConfigError(self.problems[key])
        value: Union[str, int, None] = getattr(self, key)
        return value

    def label(self, key: str) -> str:
        """``/path/config.php: $CFG->dbhost``: how messages name where a value came from."""
        return f"{self.source}: {PHP_NAMES[key]}"


# --------------------------------------------------------------------------- reading


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
            f"{path}: permission denied for user {_current_user()}; let that user read it "
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


def _current_user() -> str:
    """The effective user's name, for "permission denied" messages."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # pragma: no cover - a uid without a passwd entry
        return str(os.geteuid())


def read_moodle_config(path: str, referrer: Optional[str] = None) -> MoodleDbSettings:
    """Read and parse the config.php at ``path`` (never executing it).

    ``referrer`` (e.g. "[database] moodle_config in /etc/alt42/heartbeat.ini") is named
    in the fix of "missing file" messages so the operator knows what to correct.
    """
    where = referrer or "[database] moodle_config"
    text, _mode = read_text_file(
        path,
        limit=MAX_CONFIG_PHP_BYTES,
        hint=f"set {where} to the path of Moodle's config.php",
        what="Moodle config.php",
    )
    return parse_moodle_config(text, path)


def parse_moodle_config(text: str, source: str) -> MoodleDbSettings:
    """Parse the text of a config.php; ``source`` names it in messages.

    Raises ConfigError for what makes the whole file unusable: not PHP, truncated,
    unterminated strings or comments, a dbtype other than MySQL/MariaDB, or no
    database setting at all. Per-key problems are kept for :meth:`MoodleDbSettings.require`.
    """
    tokens = tokenize(text, source)
    parser = _Parser(tokens, source)
    parser.run()
    values: dict[str, Union[str, int, None]] = {}
    problems: dict[str, str] = {}
    for key, slot in parser.slots.items():
        if isinstance(slot, _Problem):
            problems[key] = _problem_message(source, key, slot)
        else:
            values[key] = slot.value
    if not parser.slots:
        raise ConfigError(
            f"{source}: sets none of $CFG->dbtype, dbhost, dbname, dbuser, dbpass, prefix, "
            "dboptions; point [database] moodle_config at Moodle's config.php (includes and "
            "requires are not followed) or set the [database] keys in the INI file"
        )
    settings = MoodleDbSettings(
        source=source,
        dbtype=_as_str(values.get("dbtype")),
        host=_as_str(values.get("host")),
        name=_as_str(values.get("name")),
        user=_as_str(values.get("user")),
        password=_as_str(values.get("password")),
        prefix=_as_str(values.get("prefix")),
        port=_as_int(values.get("port")),
        socket=_as_str(values.get("socket")),
        problems=problems,
    )
    dbtype = settings.require("dbtype")
    if dbtype is not None and dbtype not in SUPPORTED_DBTYPES:
        raise ConfigError(
            f"{source}: $CFG->dbtype is {dbtype!r}; alt42-heartbeat supports mysqli, mariadb "
            "and auroramysql"
        )
    return settings


def _as_str(value: Union[str, int, None]) -> Optional[str]:
    return value if isinstance(value, str) else None


def _as_int(value: Union[str, int, None]) -> Optional[int]:
    return value if isinstance(value, int) else None


def _problem_message(source: str, key: str, problem: _Problem) -> str:
    """One line: file, key, why, and where to set the value instead."""
    if key == "dbtype":
        fix = "write it as a plain quoted string such as 'mysqli'"
    else:
        fix = f"alt42-heartbeat reads config.php as text and never runs PHP: set {_OVERRIDES[key]}"
    return f"{source}: {PHP_NAMES[key]} {problem.reason} (line {problem.line}); {fix}"


# --------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class Token:
    """One PHP token. ``kind``: var, name, str, num, op; ``text`` is the name or operator.

    ``value`` is the literal value of str/num tokens; ``opaque`` says why a
    literal-looking token is not one (a variable inside double quotes, backticks).
    """

    kind: str
    text: str
    line: int
    value: PhpValue = None
    opaque: Optional[str] = None

    def is_op(self, *ops: str) -> bool:
        return self.kind == "op" and self.text in ops


_OPEN_TAG = re.compile(r"<\?(?:php(?=\s|$)|=|(?=\s))", re.IGNORECASE)
_IDENT = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*")
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F](?:_?[0-9a-fA-F])*"
    r"|0[bB][01](?:_?[01])*"
    r"|0[oO][0-7](?:_?[0-7])*"
    r"|(?:[0-9](?:_?[0-9])*)?\.[0-9](?:_?[0-9])*(?:[eE][+-]?[0-9](?:_?[0-9])*)?"
    r"|[0-9](?:_?[0-9])*(?:\.(?:[0-9](?:_?[0-9])*)?)?(?:[eE][+-]?[0-9](?:_?[0-9])*)?"
)
_HEREDOC = re.compile(r"<<<[ \t]*(?:(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1)\r?\n")
_OPERATORS = (
    "<<=", ">>=", "**=", "...", "<=>", "===", "!==", "??=", "?->",
    "->", "=>", "::", "==", "!=", "<>", "<=", ">=", "&&", "||", "??", "++", "--",
    ".=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<", ">>", "**",
)  # fmt: skip
_SIMPLE_ESCAPES = {
    "n": "\n", "t": "\t", "r": "\r", "v": "\v", "e": "\x1b", "f": "\f",
    "\\": "\\", "$": "$", '"': '"',
}  # fmt: skip
_DIGITS = "0123456789"
_INTERPOLATION = "is a double-quoted string with a PHP variable in it"


def tokenize(text: str, source: str) -> list[Token]:
    """Split PHP source into tokens, skipping comments and text outside ``<?php ?>``.

    A closing ``?>`` becomes a ``;`` token (it ends a statement in PHP too).
    """
    return _Lexer(text, source).run()


class _Lexer:
    """A hand-written PHP lexer: just enough to find statement and literal boundaries."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.pos = 0
        self.tokens: list[Token] = []

    def line(self, pos: Optional[int] = None) -> int:
        return self.text.count("\n", 0, self.pos if pos is None else pos) + 1

    def fail(self, what: str, pos: int) -> NoReturn:
        raise ConfigError(
            f"{self.source}: {what} starting on line {self.line(pos)} never ends; the file "
            "looks truncated or is not valid PHP (php -l would say so)"
        )

    def run(self) -> list[Token]:
        found_tag = False
        while self.pos < len(self.text):
            match = _OPEN_TAG.search(self.text, self.pos)
            if match is None:
                break
            found_tag = True
            self.pos = match.end()
            self.php_mode()
        if not found_tag:
            raise ConfigError(
                f"{self.source}: has no <?php tag, so it is not Moodle's config.php; point "
                "[database] moodle_config at Moodle's config.php"
            )
        return self.tokens

    def add(self, kind: str, text: str, start: int, **extra: object) -> None:
        value = extra.get("value")
        opaque = extra.get("opaque")
        self.tokens.append(
            Token(
                kind,
                text,
                self.line(start),
                value if isinstance(value, (str, int, float, bool)) else None,
                opaque if isinstance(opaque, str) else None,
            )
        )

    def php_mode(self) -> None:
        """Tokenize until ``?>`` or the end of the text."""
        text = self.text
        while self.pos < len(text):
            start = self.pos
            char = text[start]
            nxt = text[start + 1] if start + 1 < len(text) else ""
            if char.isspace():
                self.pos += 1
            elif char == "?" and nxt == ">":
                self.add("op", ";", start)
                self.pos += 2
                return
            elif not self.comment(char, nxt) and not self.quoted(char):
                self.plain(char, nxt)

    def comment(self, char: str, nxt: str) -> bool:
        """Skip a comment at ``pos``, if there is one."""
        if char == "#" or (char == "/" and nxt == "/"):
            self.line_comment()
            return True
        if char == "/" and nxt == "*":
            end = self.text.find("*/", self.pos + 2)
            if end < 0:
                self.fail("a /* comment", self.pos)
            self.pos = end + 2
            return True
        return False

    def quoted(self, char: str) -> bool:
        """Read a string (or a backtick command) at ``pos``, if there is one."""
        start = self.pos
        if char == "'":
            self.single_quoted()
        elif char == '"':
            value, opaque = self.double_quoted(start + 1, '"')
            self.add("str", '"', start, value=value, opaque=opaque)
        elif char == "`":
            end = self.text.find("`", start + 1)
            if end < 0:
                self.fail("a `backtick` command", start)
            self.add("str", "`", start, opaque="runs a shell command")
            self.pos = end + 1
        elif self.text.startswith("<<<", start):
            self.heredoc()
        else:
            return False
        return True

    def plain(self, char: str, nxt: str) -> None:
        """A variable, a number, a name or an operator at ``pos``."""
        start = self.pos
        if char == "$" and _IDENT.match(self.text, start + 1):
            self.word("var", start + 1)
        elif char in _DIGITS or (char == "." and nxt != "" and nxt in _DIGITS):
            self.number()
        elif _IDENT.match(self.text, start):
            self.word("name", start)
        else:
            op = next((op for op in _OPERATORS if self.text.startswith(op, start)), char)
            self.add("op", op, start)
            self.pos += len(op)

    def word(self, kind: str, at: int) -> None:
        """A ``$variable`` (``at`` after the ``$``) or a bare name."""
        match = _IDENT.match(self.text, at)
        if match is None:  # pragma: no cover - callers matched already
            raise ConfigError(f"{self.source}: cannot read line {self.line()}")
        self.add(kind, match.group(), self.pos)
        self.pos = match.end()

    def line_comment(self) -> None:
        """``//`` and ``#`` comments end at a newline or at ``?>`` (which still counts)."""
        end = len(self.text)
        for stop in ("\n", "?>"):
            found = self.text.find(stop, self.pos)
            if 0 <= found < end:
                end = found
        self.pos = end

    def single_quoted(self) -> None:
        """'...': only \\' and \\\\ are escapes; any other backslash stays."""
        start = self.pos
        out: list[str] = []
        i = start + 1
        text = self.text
        while i < len(text):
            char = text[i]
            if char == "\\" and i + 1 < len(text) and text[i + 1] in "'\\":
                out.append(text[i + 1])
                i += 2
            elif char == "'":
                self.add("str", "'", start, value="".join(out))
                self.pos = i + 1
                return
            else:
                out.append(char)
                i += 1
        self.fail("a '...' string", start)

    def double_quoted(self, i: int, close: str) -> tuple[Optional[str], Optional[str]]:
        """Read a "..." string body from ``i``; return (value, opaque reason).

        PHP escapes are decoded to bytes and then read as UTF-8, as PHP strings are
        bytes. ``$name``, ``{$`` and ``${`` interpolate variables: the value is then
        unknown, but the string still has to be skipped correctly (``{$a["k"]}`` may
        hold quotes).
        """
        start = i - 1
        text = self.text
        out = bytearray()
        opaque: Optional[str] = None
        while i < len(text):
            char = text[i]
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if char == close:
                self.pos = i + 1
                if opaque is not None:
                    return None, opaque
                try:
                    return out.decode("utf-8"), None
                except UnicodeDecodeError:
                    return None, "is a double-quoted string whose escapes are not UTF-8"
            if char == "\\":
                i = self._escape(i, out, close)
            elif char == "$" and (_IDENT.match(text, i + 1) or nxt == "{"):
                opaque = _INTERPOLATION
                out += b"$"
                i += 1
            elif char == "{" and nxt == "$":
                opaque = _INTERPOLATION
                i = self._skip_braces(i, start)
            else:
                out += char.encode("utf-8", "surrogatepass")
                i += 1
        self.fail('a "..." string', start)

    def _escape(self, i: int, out: bytearray, close: str) -> int:
        """Decode the escape at ``text[i] == '\\'`` into ``out``; return the next index."""
        text = self.text
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt in _SIMPLE_ESCAPES and (nxt != '"' or close == '"'):
            out += _SIMPLE_ESCAPES[nxt].encode()
            return i + 2
        octal = re.match(r"[0-7]{1,3}", text[i + 1 : i + 4])
        if octal:
            out.append(int(octal.group(), 8) & 0xFF)
            return i + 1 + octal.end()
        hexa = re.match(r"x([0-9A-Fa-f]{1,2})", text[i + 1 : i + 4])
        if hexa:
            out.append(int(hexa.group(1), 16))
            return i + 1 + hexa.end()
        uni = re.match(r"u\{([0-9A-Fa-f]{1,6})\}", text[i + 1 : i + 10])
        if uni and int(uni.group(1), 16) <= 0x10FFFF:
            out += chr(int(uni.group(1), 16)).encode("utf-8", "surrogatepass")
            return i + 1 + uni.end()
        out += b"\\"  # unknown escape: PHP keeps the backslash
        return i + 1

    def _skip_braces(self, i: int, start: int) -> int:
        """Skip ``{$...}`` inside a double-quoted string, quotes inside it included."""
        text = self.text
        depth = 0
        while i < len(text):
            char = text[i]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    return i + 1
            elif char in "'\"":
                end = i + 1
                while end < len(text) and text[end] != char:
                    end += 2 if text[end] == "\\" else 1
                i = end
            i += 1
        self.fail('a "..." string', start)

    def heredoc(self) -> None:
        """``<<<ID`` heredoc (like "...") and ``<<<'ID'`` nowdoc (raw), PHP 7.3 style."""
        start = self.pos
        match = _HEREDOC.match(self.text, start)
        if match is None:
            self.add("op", "<<", start)
            self.pos += 2
            return
        quote, ident = match.group(1), match.group(2)
        body_start = match.end()
        closing = re.compile(r"^([ \t]*)" + re.escape(ident) + r"(?![A-Za-z0-9_\x80-\uffff])", re.M)
        end = closing.search(self.text, body_start)
        if end is None:
            self.fail("a <<<heredoc", start)
        indent = len(end.group(1))
        body = self.text[body_start : end.start()]
        body = body[:-1] if body.endswith("\n") else body
        body = body[:-1] if body.endswith("\r") else body
        body = "\n".join(line[indent:] for line in body.split("\n"))
        self.pos = end.end()
        if quote == "'":
            self.add("str", "<<<", start, value=body)
            return
        saved_text, saved_pos = self.text, self.pos
        self.text = body + "\x00"  # a sentinel closer that cannot occur in the body
        value, opaque = self.double_quoted(0, "\x00")
        self.text, self.pos = saved_text, saved_pos
        self.add("str", "<<<", start, value=value, opaque=opaque)

    def number(self) -> None:
        start = self.pos
        match = _NUMBER.match(self.text, start)
        if match is None:  # pragma: no cover - callers checked for a digit
            raise ConfigError(f"{self.source}: cannot read line {self.line()}")
        raw = match.group().replace("_", "")
        self.pos = match.end()
        value: Union[int, float]
        lower = raw.lower()
        try:
            if lower.startswith("0x"):
                value = int(raw[2:], 16)
            elif lower.startswith("0b"):
                value = int(raw[2:], 2)
            elif lower.startswith("0o"):
                value = int(raw[2:], 8)
            elif "." in raw or "e" in lower:
                value = float(raw)
            elif len(raw) > 1 and raw.startswith("0"):
                value = int(raw, 8)  # PHP: a leading 0 means octal
            else:
                value = int(raw)
        except ValueError:
            self.add("num", raw, start, opaque="is not a valid PHP number")
            return
        self.add("num", raw, start, value=value)


# --------------------------------------------------------------------------- parser


@dataclass(frozen=True)
class _Value:
    value: Union[str, int, None]
    line: int


@dataclass(frozen=True)
class _Problem:
    reason: str
    line: int


class _NotLiteral(Exception):
    """Raised inside the expression parser; turns the value into an :class:`Opaque`."""

    def __init__(self, reason: str = "is not a literal value") -> None:
        super().__init__(reason)
        self.reason = reason


_EOF = Token("eof", "", 0)
_IN_BLOCK = "is assigned inside a block (if, function, ...)"
_ASSIGN_OPS: frozenset[str] = frozenset(
    {"=", ".=", "+=", "-=", "*=", "/=", "%=", "**=", "??=", "&=", "|=", "^=", "<<=", ">>="}
)
_CHANGE_OPS = (*sorted(_ASSIGN_OPS), "++", "--")
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_OPENERS.values())
_STATEMENT_END = frozenset({";"})


class _Parser:
    """Walk statements; record ``$CFG->x = literal;`` for the properties that matter.

    ``slots`` maps a field to its last value or to the problem that hides it. An
    assignment inside ``{...}`` (if, function, ...) is a problem: whether it runs
    depends on PHP. ``$CFG = new stdClass();`` and ``unset($CFG);`` start afresh.
    """

    def __init__(self, tokens: list[Token], source: str) -> None:
        self.tokens = tokens
        self.source = source
        self.pos = 0
        self.depth = 0  # nesting of { } blocks at statement level
        self.slots: dict[str, Union[_Value, _Problem]] = {}

    # -- token helpers
    def peek(self, offset: int = 0) -> Token:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else _EOF

    def truncated(self, line: int) -> NoReturn:
        raise ConfigError(
            f"{self.source}: ends in the middle of a statement (from line {line}); the file "
            "looks truncated or is not valid PHP (php -l would say so)"
        )

    def is_cfg_property(self, offset: int = 0) -> bool:
        return (
            self.peek(offset).kind == "var"
            and self.peek(offset).text == "CFG"
            and self.peek(offset + 1).is_op("->")
            and self.peek(offset + 2).kind == "name"
        )

    # -- statements
    def run(self) -> None:
        while self.pos < len(self.tokens):
            token = self.peek()
            if token.is_op(";"):
                self.pos += 1
            elif token.is_op("{"):
                self.depth += 1
                self.pos += 1
            elif token.is_op("}"):
                if self.depth == 0:
                    raise ConfigError(
                        f"{self.source}: line {token.line} closes a block that was never "
                        "opened; the file is not valid PHP (php -l would say so)"
                    )
                self.depth -= 1
                self.pos += 1
            else:
                self.statement()
        if self.depth > 0:
            self.truncated(self.tokens[-1].line)

    def statement(self) -> None:
        start = self.pos
        first = self.peek()
        if self.is_cfg_property():
            prop = self.peek(2).text
            if self.peek(3).is_op("="):
                self.pos += 4
                value = self.value(_STATEMENT_END)
                self.end_statement(first.line)
                self.assign(prop, value, first.line)
                return
            if prop == "dboptions" and self.peek(3).is_op("["):
                self.pos += 4
                key = self.value(frozenset({"]"}))
                if self.peek().is_op("]") and self.peek(1).is_op("="):
                    self.pos += 2
                    value = self.value(_STATEMENT_END)
                    self.end_statement(first.line)
                    self.assign_option(key, value, first.line)
                    return
                self.pos = start
        elif self.depth == 0 and self._starts_reset():
            self.slots.clear()
        self.skip_statement()

    def _starts_reset(self) -> bool:
        """``$CFG = ...`` or ``unset($CFG)``: everything set so far is gone."""
        first = self.peek()
        if first.kind == "var" and first.text == "CFG" and self.peek(1).is_op("="):
            return True
        return (
            first.kind == "name"
            and first.text.lower() == "unset"
            and self.peek(1).is_op("(")
            and self.peek(2).kind == "var"
            and self.peek(2).text == "CFG"
            and self.peek(3).is_op(")")
        )

    def end_statement(self, line: int) -> None:
        token = self.peek()
        if token.kind == "eof":
            self.truncated(line)
        if token.is_op(";"):
            self.pos += 1

    def skip_statement(self) -> None:
        """Skip a statement we do not read, up to ``;`` or a block brace, noting any
        assignment to a ``$CFG`` property that matters hidden inside it."""
        start = self.pos
        depth = 0
        while True:
            token = self.peek()
            if token.kind == "eof":
                self.truncated(self.tokens[start].line)
            if depth == 0 and token.is_op(";", "{", "}"):
                break
            if token.is_op("(", "["):
                depth += 1
            elif token.is_op(")", "]"):
                depth -= 1
            self.pos += 1
        self.note_hidden_assignments(start, self.pos)
        if self.peek().is_op(";"):
            self.pos += 1

    def note_hidden_assignments(self, start: int, end: int) -> None:
        """Mark properties assigned inside a skipped range (``if ($x) $CFG->dbhost = ..``,
        ``$CFG->dbpass .= ..``, ``$a = $CFG->dbname = ..``) as unknowable."""
        saved = self.pos
        for index in range(start, end):
            self.pos = index
            if not self.is_cfg_property() or self.peek(2).text not in _PROPERTY_FIELDS:
                continue
            after = index + 3
            while after < end and self.tokens[after].is_op("["):
                after = self._matching(after, end) + 1
            if after < end and self.tokens[after].is_op(*_CHANGE_OPS):
                reason = "is changed by a statement that cannot be read as text"
                for key in _PROPERTY_FIELDS[self.peek(2).text]:
                    self.slots[key] = _Problem(reason, self.tokens[index].line)
        self.pos = saved

    def _matching(self, index: int, end: int) -> int:
        """Index of the bracket closing the one at ``index`` (or ``end``)."""
        depth = 0
        for pos in range(index, end):
            token = self.tokens[pos]
            if token.is_op(*_OPENERS):
                depth += 1
            elif token.is_op(*_CLOSERS):
                depth -= 1
                if depth == 0:
                    return pos
        return end

    # -- assignments
    def assign(self, prop: str, value: PhpValue, line: int) -> None:
        fields = _PROPERTY_FIELDS.get(prop)
        if fields is None:
            return
        if self.depth > 0:
            for key in fields:
                self.slots[key] = _Problem(_IN_BLOCK, line)
            return
        if prop != "dboptions":
            self.slots[fields[0]] = _string_slot(value, line)
            return
        if isinstance(value, PhpArray):
            for option, key in _OPTION_FIELDS.items():
                if option in value.items:
                    self.slots[key] = _option_slot(key, value.items[option], line)
                elif value.opaque_keys:
                    self.slots[key] = _Problem("has array keys that are not literal", line)
                else:
                    self.slots[key] = _Value(None, line)
            return
        reason = value.reason if isinstance(value, Opaque) else "is not an array"
        for key in fields:
            self.slots[key] = _Problem(reason, line)

    def assign_option(self, option: PhpValue, value: PhpValue, line: int) -> None:
        """``$CFG->dboptions['dbport'] = 3307;``"""
        if isinstance(option, Opaque):
            for key in _OPTION_FIELDS.values():
                self.slots[key] = _Problem("is set with a key that is not literal", line)
            return
        field_name = _OPTION_FIELDS.get(option) if isinstance(option, str) else None
        if field_name is None:
            return
        if self.depth > 0:
            self.slots[field_name] = _Problem(_IN_BLOCK, line)
        else:
            self.slots[field_name] = _option_slot(field_name, value, line)

    # -- expressions
    def value(self, stop: frozenset[str]) -> PhpValue:
        """A literal expression ending at one of ``stop`` (not consumed), else Opaque."""
        start = self.pos
        try:
            result = self.expr()
            if self.peek().kind == "op" and self.peek().text in stop:
                return result
            raise _NotLiteral()
        except _NotLiteral as exc:
            reason = exc.reason
        self.pos = start
        self.skip_to(stop)
        self.note_hidden_assignments(start, self.pos)
        return Opaque(reason)

    def skip_to(self, stop: frozenset[str]) -> None:
        start_line = self.peek().line
        depth = 0
        while True:
            token = self.peek()
            if token.kind == "eof":
                self.truncated(start_line)
            if token.kind == "op":
                if depth == 0 and token.text in stop:
                    return
                if token.text in _OPENERS:
                    depth += 1
                elif token.text in _CLOSERS:
                    depth -= 1
                    if depth < 0:  # a stray closer: let the caller see it
                        return
            self.pos += 1

    def expr(self) -> PhpValue:
        result = self.term()
        while self.peek().is_op("."):
            self.pos += 1
            result = _concat(result, self.term())
        return result

    def term(self) -> PhpValue:
        token = self.peek()
        self.pos += 1
        if token.kind in ("str", "num"):
            if token.opaque is not None:
                raise _NotLiteral(token.opaque)
            return token.value
        if token.is_op("-", "+") and self.peek().kind == "num" and self.peek().opaque is None:
            number = self.peek().value
            self.pos += 1
            if isinstance(number, (int, float)) and not isinstance(number, bool):
                return -number if token.text == "-" else number
            raise _NotLiteral()
        if token.kind == "name":
            word = token.text.lower()
            if word in ("true", "false", "null") and not self.peek().is_op("(", "::"):
                return {"true": True, "false": False, "null": None}[word]
            if word == "array" and self.peek().is_op("("):
                self.pos += 1
                return self.elements(")")
        if token.is_op("["):
            return self.elements("]")
        if token.is_op("("):
            inner = self.expr()
            if not self.peek().is_op(")"):
                raise _NotLiteral()
            self.pos += 1
            return inner
        raise _NotLiteral()

    def elements(self, close: str) -> PhpArray:
        """Array elements up to ``close``: ``key => value`` or ``value``, trailing comma ok."""
        array = PhpArray()
        while True:
            if self.peek().is_op(close):
                self.pos += 1
                return array
            if self.peek().kind == "eof":
                raise _NotLiteral()
            first = self.value(frozenset({",", "=>", close}))
            if self.peek().is_op("=>"):
                self.pos += 1
                array.set(first, self.value(frozenset({",", close})))
            else:
                if isinstance(first, Opaque):  # maybe ...$spread: keys unknown
                    array.opaque_keys = True
                array.append(first)
            if self.peek().is_op(","):
                self.pos += 1
            elif not self.peek().is_op(close):
                raise _NotLiteral()


def _concat(left: PhpValue, right: PhpValue) -> str:
    """PHP's ``.`` for the scalar literals whose string form is unambiguous."""
    return _php_string(left) + _php_string(right)


def _php_string(value: PhpValue) -> str:
    if isinstance(value, bool):
        return "1" if value else ""
    if value is None:
        return ""
    if isinstance(value, (str, int)):
        return str(value)
    raise _NotLiteral()


def _type_name(value: PhpValue) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, PhpArray):
        return "an array"
    return "a string"


def _string_slot(value: PhpValue, line: int) -> Union[_Value, _Problem]:
    """dbhost, dbname, dbuser, dbpass, prefix, dbtype: a string (an int is taken as
    its digits, as PHP would). Never quote the value: it may be the password."""
    if isinstance(value, Opaque):
        return _Problem(value.reason, line)
    if isinstance(value, str):
        return _Value(value, line)
    if isinstance(value, int) and not isinstance(value, bool):
        return _Value(str(value), line)
    return _Problem(f"is {_type_name(value)}, not a string", line)


def _option_slot(key: str, value: PhpValue, line: int) -> Union[_Value, _Problem]:
    """One ``dboptions`` entry that matters: ``dbport`` or ``dbsocket``."""
    if isinstance(value, Opaque):
        return _Problem(value.reason, line)
    return _port_slot(value, line) if key == "port" else _socket_slot(value, line)


def _port_slot(value: PhpValue, line: int) -> Union[_Value, _Problem]:
    """'' / 0 / '0' / null / false mean Moodle's default port (None), as PHP's empty()
    does in Moodle's driver; a number or a numeric string is the port."""
    if value is None or value is False or value in ("", "0"):
        return _Value(None, line)
    if isinstance(value, int) and not isinstance(value, bool):
        return _Value(value if value != 0 else None, line)
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,9}\s*", value):
        return _Value(int(value) or None, line)
    shown = f"{value!r}" if isinstance(value, str) and len(value) <= 40 else _type_name(value)
    return _Problem(f"is {shown}, not a port number", line)


def _socket_slot(value: PhpValue, line: int) -> Union[_Value, _Problem]:
    """false / true / '' / null mean "no explicit socket" (None); a string is a path."""
    if value is None or isinstance(value, bool) or value == "":
        return _Value(None, line)
    if isinstance(value, str):
        return _Value(value, line)
    return _Problem(f"is {_type_name(value)}, not a socket path", line)
