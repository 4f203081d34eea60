"""Read the database settings out of Moodle's ``config.php`` as text, never as PHP.

Why not run it: including config.php bootstraps Moodle (``lib/setup.php``), which
refuses a CLI script that does not declare itself (that is how the PHP job broke), and
running PHP would tie the job to the web server's PHP. What Moodle's installer writes,
and what admins add by hand, is a list of ``$CFG->name = <literal>;`` statements. This
module reads exactly that subset:

* literals: quoted strings (with PHP's escapes), heredoc/nowdoc, numbers, true, false,
  null, arrays (``array(...)``, ``[...]``), ``.`` between them, and constants the file
  itself ``define()``s (or declares with ``const``) as a literal;
* statements at the top level; ``require_once(... '/lib/setup.php')`` ends the
  configuration (Moodle connects to the database in there, so nothing after it can
  change the connection).

Anything else that could change a database setting makes that setting unknowable
rather than guessed: a value PHP computes (``getenv()``, a variable), an assignment
inside a block or under a condition (``if``/``else``, braces or ``: ... endif;``, a
function), or an ``include``/``require`` of another file, where the setting may live.
Such a key becomes a *problem*: a :class:`ConfigError` that is raised only when the value
is needed, i.e. when neither the environment nor the INI file sets it, and that says what
to set instead. Messages never quote a password, nor a line of the file.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Callable, NoReturn, Optional, Union

from heartbeat.errors import ConfigError
from heartbeat.files import read_text_file

MAX_CONFIG_PHP_BYTES = 1024 * 1024
SUPPORTED_DBTYPES = ("mysqli", "mariadb", "auroramysql")

#: Fields of :class:`MoodleDbSettings` -> how config.php spells them: the ``$CFG``
#: properties and ``dboptions`` keys read, and how messages name them.
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
_PROPERTIES = {php[6:]: key for key, php in PHP_NAMES.items() if "[" not in php}
_OPTIONS = {php.split("'")[1]: key for key, php in PHP_NAMES.items() if "[" in php}
FIELDS = tuple(PHP_NAMES)


def ini_key(field: str) -> str:
    """The ``[database]`` key (and ``ALT42_DB_<KEY>`` variable) that sets ``field``
    instead: config.py's ``KEYS`` (a test keeps the two equal)."""
    return "type" if field == "dbtype" else field


@dataclass(frozen=True)
class Problem:
    """Why a field cannot be read as text, and on which line."""

    reason: str
    line: int


@dataclass(frozen=True)
class MoodleDbSettings:
    """What a config.php says about the database; ``None`` means "not set there".

    ``problems`` maps a field to why its value cannot be read as text (and the line);
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
    problems: Mapping[str, Problem] = field(default_factory=dict, hash=False)

    def has(self, key: str) -> bool:
        """Whether config.php says something about ``key`` (a value or a problem)."""
        return key in self.problems or getattr(self, key) is not None

    def require(self, key: str) -> Union[str, int, None]:
        """The value of ``key``, or the ConfigError explaining why it cannot be read."""
        if key in self.problems:
            raise ConfigError(self.problem_message([key]))
        value: Union[str, int, None] = getattr(self, key)
        return value

    def problem_message(self, keys: Sequence[str]) -> str:
        """One line for the problem of ``keys[0]``, naming every key of ``keys`` that
        has the same one (an include hides them all: say so once, not key by key)."""
        problem = self.problems[keys[0]]
        same = [key for key in keys if self.problems.get(key) == problem]
        names = ", ".join(PHP_NAMES[key] for key in same)
        keys = [ini_key(key) for key in same]
        fix = (
            f"[database] {keys[0]} or ALT42_DB_{keys[0].upper()}" if len(keys) == 1
            else f"[database] {', '.join(keys)} (or their ALT42_DB_* variables)"
        )  # fmt: skip
        return (
            f"{self.source}: line {problem.line}: {names} {problem.reason}; alt42-heartbeat "
            f"reads config.php as text and never runs PHP: set {fix}"
        )

    def label(self, key: str) -> str:
        """``/path/config.php: $CFG->dbhost``: how messages name where a value came from."""
        return f"{self.source}: {PHP_NAMES[key]}"


def read_moodle_config(path: str, referrer: Optional[str] = None) -> MoodleDbSettings:
    """Read and parse the config.php at ``path``; ``referrer`` (the INI key that named
    it) appears in the fix of "missing file" messages."""
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

    Raises ConfigError for what makes the whole file unusable: not PHP, truncated, a
    literal dbtype other than MySQL/MariaDB, or no database setting at all. Per-key
    problems are kept for :meth:`MoodleDbSettings.require`.
    """
    reader = _Reader(tokenize(text, source), source)
    reader.run()
    if not reader.slots:
        raise ConfigError(
            f"{source}: sets none of $CFG->dbtype, dbhost, dbname, dbuser, dbpass, prefix, "
            "dboptions; point [database] moodle_config at Moodle's config.php or set the "
            "[database] keys in the INI file"
        )
    values: dict[str, Union[str, int, None]] = {}
    problems: dict[str, Problem] = {}
    for key, slot in reader.slots.items():
        if isinstance(slot, Problem):
            problems[key] = slot
        else:
            values[key] = slot.value
    text_values = {k: v for k, v in values.items() if isinstance(v, str)}
    dbtype = text_values.get("dbtype")
    if dbtype is not None and dbtype not in SUPPORTED_DBTYPES:
        raise ConfigError(
            f"{source}: $CFG->dbtype is {dbtype!r}; alt42-heartbeat supports mysqli, mariadb "
            "and auroramysql"
        )
    port = values.get("port")
    return MoodleDbSettings(
        source=source,
        port=port if isinstance(port, int) else None,
        problems=problems,
        **{key: text_values.get(key) for key in FIELDS if key != "port"},
    )


# --------------------------------------------------------------------------- tokens

Scalar = Union[str, int, float, bool, None]


@dataclass(frozen=True)
class Opaque:
    """A value PHP would compute at run time; ``reason`` says why it is not a literal."""

    reason: str


class PhpArray(dict[Union[int, str], "PhpValue"]):
    """An array literal (key -> value); ``unknown_keys``: some key was not a literal."""

    unknown_keys = False


PhpValue = Union[Scalar, PhpArray, Opaque]


@dataclass(frozen=True)
class Token:
    """One PHP token. ``kind``: var (``text`` without the ``$``), name, str, num, op.

    ``value`` is the literal of a str/num token; ``opaque`` says why a literal-looking
    token is not one (a variable inside double quotes, a backtick command).
    """

    kind: str
    text: str
    line: int
    value: Scalar = None
    opaque: Optional[str] = None

    def is_op(self, *ops: str) -> bool:
        return self.kind == "op" and self.text in ops

    def is_word(self, *words: str) -> bool:
        return self.kind == "name" and self.text.lower() in words


_OPEN_TAG = re.compile(r"<\?(?:php(?=\s|$)|=|(?=\s))", re.IGNORECASE)
_WORD = r"[A-Za-z_\x80-\U0010ffff][\w\x80-\U0010ffff]*"
_PHP_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<comment>(?:\#|//)(?:[^\n?]|\?(?!>))*|/\*.*?\*/)
      | (?P<close>\?>)
      | (?P<single>'(?:[^'\\]|\\.)*')
      | (?P<double>"(?:[^"\\]|\\.)*")
      | (?P<heredoc><<<[ \t]*(?P<quote>['"]?)(?P<label>[A-Za-z_]\w*)(?P=quote)\r?\n)
      | (?P<backtick>`[^`]*`)
      | (?P<var>\$"""
    + _WORD
    + r""")
      | (?P<num>0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+
              |[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9][0-9_]*(?:[eE][+-]?[0-9]+)?)
      | (?P<name>"""
    + _WORD
    + r""")
      | (?P<unclosed>'|"|`|/\*)
      | (?P<op>->|=>|::|\?\?=|\?\?|\*\*=|<<=|>>=|===|!==|\.\.\.
             |[.+\-*/%&|^]=|[=!<>]=|\+\+|--|&&|\|\||.)
    """,
    re.VERBOSE | re.DOTALL,
)
_UNCLOSED = {"'": "a '...' string", '"': 'a "..." string', "`": "a `backtick` command"}
_ESCAPE = re.compile(r'\\(?:([nrtvef\\$"])|([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u\{([0-9A-Fa-f]+)\})')
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "e": "\x1b", "f": "\f"}
_INTERPOLATION = re.compile(r"(?<!\\)(?:\\\\)*(?:\$[A-Za-z_\x80-\U0010ffff{]|\{\$)")
_INTERPOLATION_REASON = "is a double-quoted string with a PHP variable in it"


def tokenize(text: str, source: str) -> list[Token]:
    """The PHP tokens of ``text``: comments and text outside ``<?php ... ?>`` dropped,
    a closing ``?>`` turned into ``;`` (it ends a statement in PHP too)."""
    tokens: list[Token] = []
    newlines = [m.start() for m in re.finditer("\n", text)]
    pos = 0
    found = False
    while (tag := _OPEN_TAG.search(text, pos)) is not None:
        found = True
        pos = _php_mode(text, tag.end(), source, tokens, newlines)
    if not found:
        raise ConfigError(
            f"{source}: has no <?php tag, so it is not Moodle's config.php; point "
            "[database] moodle_config at Moodle's config.php"
        )
    return tokens


def _php_mode(text: str, pos: int, source: str, out: list[Token], newlines: list[int]) -> int:
    """Tokenize from ``pos`` up to and including ``?>``; return where PHP mode ended."""
    while pos < len(text):
        match = _PHP_TOKEN.match(text, pos)
        if match is None:  # pragma: no cover - the last alternative matches any character
            break
        kind, start, pos = match.lastgroup or "op", match.start(), match.end()
        if kind in ("space", "comment"):
            continue
        line = bisect.bisect(newlines, start) + 1
        word = match.group()
        if kind == "close":
            out.append(Token("op", ";", line))
            return pos
        if kind == "unclosed":
            _never_ends(source, _UNCLOSED.get(word, "a /* comment"), line)
        if kind == "heredoc":
            token, pos = _heredoc(text, match, source, line)
            out.append(token)
        elif kind in _MAKERS:
            out.append(_MAKERS[kind](word, line))
        else:
            out.append(Token(kind, word, line))
    return pos


def _never_ends(source: str, what: str, line: int) -> NoReturn:
    raise ConfigError(
        f"{source}: {what} starting on line {line} never ends; the file looks truncated or "
        "is not valid PHP (php -l would say so)"
    )


def _heredoc(text: str, match: re.Match[str], source: str, line: int) -> tuple[Token, int]:
    """``<<<ID`` (like "...") or ``<<<'ID'`` (raw) up to its closing label, whose
    indentation is removed from every line (PHP 7.3)."""
    label, nowdoc = match.group("label"), match.group("quote") == "'"
    closing = re.compile(r"^([ \t]*)" + label + r"(?![\w\x80-\U0010ffff])", re.MULTILINE)
    end = closing.search(text, match.end())
    if end is None:
        _never_ends(source, "a <<<heredoc", line)
    body = text[match.end() : end.start()].removesuffix("\n").removesuffix("\r")
    indent = len(end.group(1))
    body = "\n".join(part[indent:] for part in body.split("\n"))
    decoded = (body, None) if nowdoc else _decode(body, heredoc=True)
    return _string_token("<<<", line, *decoded), end.end()


def _string_token(text: str, line: int, value: Optional[str], opaque: Optional[str]) -> Token:
    return Token("str", text, line, value, opaque)


def _decode(body: str, heredoc: bool) -> tuple[Optional[str], Optional[str]]:
    """A double-quoted (or heredoc) string body: (value, None) or (None, why not).

    PHP strings are bytes: escapes such as ``\\xc3\\xa9`` give bytes, read as UTF-8.
    """
    if _INTERPOLATION.search(body):
        return None, _INTERPOLATION_REASON
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(body):
        simple, octal, hexa, code = match.groups()
        if (simple == '"' and heredoc) or (code and int(code, 16) > 0x10FFFF):
            continue  # PHP keeps these as written
        out += body[pos : match.start()].encode("utf-8", "surrogatepass")
        if simple:
            out += _SIMPLE_ESCAPES.get(simple, simple).encode()
        elif octal:
            out.append(int(octal, 8) & 0xFF)
        elif hexa:
            out.append(int(hexa, 16))
        else:
            out += chr(int(code, 16)).encode("utf-8", "surrogatepass")
        pos = match.end()
    out += body[pos:].encode("utf-8", "surrogatepass")
    try:
        return out.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "is a double-quoted string whose escapes are not UTF-8"


def _number_token(raw: str, line: int) -> Token:
    digits = raw.replace("_", "").lower()
    value: Union[int, float]
    try:
        if digits[:2] in ("0x", "0b", "0o"):
            value = int(digits[2:], {"x": 16, "b": 2, "o": 8}[digits[1]])
        elif "." in digits or "e" in digits:
            value = float(digits)
        elif len(digits) > 1 and digits.startswith("0"):
            value = int(digits, 8)  # PHP: a leading 0 means octal
        else:
            value = int(digits)
    except ValueError:
        return Token("num", raw, line, opaque="is not a valid PHP number")
    return Token("num", raw, line, value)


_MAKERS: Mapping[str, Callable[[str, int], Token]] = {
    "single": lambda word, line: Token("str", "'", line, re.sub(r"\\([\\'])", r"\1", word[1:-1])),
    "double": lambda word, line: _string_token('"', line, *_decode(word[1:-1], heredoc=False)),
    "backtick": lambda _word, line: Token("str", "`", line, opaque="runs a shell command"),
    "num": _number_token,
    "var": lambda word, line: Token("var", word[1:], line),
}


# --------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class _Value:
    value: Union[str, int, None]
    line: int


class _NotLiteral(Exception):
    def __init__(self, reason: str = "is not a literal value") -> None:
        super().__init__(reason)
        self.reason = reason


_EOF = Token("eof", "", 0)
_UNDEFINED = Opaque("undefined")
_CONDITIONAL = (
    "is assigned inside a block or under a condition (if, else, function, ...), so it "
    "cannot be read as text"
)
_CHANGED = "is changed by a statement that cannot be read as text"
_CHANGE_OPS = (
    *("=", ".=", "+=", "-=", "*=", "/=", "%=", "**=", "??=", "&=", "|=", "^=", "<<=", ">>="),
    *("++", "--"),
)
_CONTROL = frozenset({"if", "elseif", "else", "while", "for", "foreach", "switch", "declare"})
_BLOCK_ENDS = frozenset({"endif", "endwhile", "endfor", "endforeach", "endswitch", "enddeclare"})
_INCLUDES = frozenset({"include", "include_once", "require", "require_once"})


class _Reader:
    """Walks the statements of config.php and records the fields in ``slots``.

    ``slots`` maps a field to its last value or to the problem that hides it. ``depth``
    counts the blocks around the current statement (``{ }`` and ``: ... endif;``), and
    ``guarded`` is set for the single statement that an ``if (...)`` without braces
    governs: only a statement at depth 0 and not guarded surely runs.
    """

    def __init__(self, tokens: list[Token], source: str) -> None:
        self.tokens = tokens
        self.source = source
        self.pos = 0
        self.depth = 0
        self.guarded = False
        self.done = False  # lib/setup.php was included: the configuration is over
        self.slots: dict[str, Union[_Value, Problem]] = {}
        self.constants: dict[str, PhpValue] = {}

    def peek(self, offset: int = 0) -> Token:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else _EOF

    def fail(self, what: str, line: int) -> NoReturn:
        raise ConfigError(
            f"{self.source}: {what} (line {line}); the file looks truncated or is not valid "
            "PHP (php -l would say so)"
        )

    def run(self) -> None:
        while self.pos < len(self.tokens) and not self.done:
            token = self.peek()
            if token.is_op(";"):
                self.pos += 1
            elif token.is_op("{"):
                self.depth += 1
                self.guarded = False
                self.pos += 1
            elif token.is_op("}") or token.is_word(*_BLOCK_ENDS):
                if self.depth == 0:
                    raise ConfigError(
                        f"{self.source}: line {token.line} closes a block that was never "
                        "opened; the file is not valid PHP (php -l would say so)"
                    )
                self.depth -= 1
                self.pos += 1
            elif token.is_word(*_CONTROL):
                self.control()
            else:
                self.statement()
        if self.depth > 0 and not self.done:
            self.fail("ends in the middle of a block that is never closed", self.tokens[-1].line)

    def control(self) -> None:
        """``if (...)``, ``else``, ``while (...)``...: what follows runs under a condition."""
        keyword = self.peek().text.lower()
        self.pos += 1
        if self.peek().is_op("("):
            end = self.matching(self.pos)
            self.note_changes(self.tokens[self.pos : end + 1], _CHANGED)
            self.pos = end + 1
        following = self.peek()
        if following.is_op(":"):  # alternative syntax: if (...): ... endif;
            self.pos += 1
            if keyword not in ("elseif", "else"):  # those continue the open block
                self.depth += 1
        elif not following.is_op("{", ";"):
            self.guarded = True  # a single statement without braces

    def statement(self) -> None:
        """One statement up to ``;`` (or a block brace); record or taint what it sets."""
        start = self.pos
        depth = 0
        while True:
            token = self.peek()
            if token.kind == "eof":
                self.fail("ends in the middle of a statement", self.tokens[start].line)
            if depth == 0 and token.is_op(";", "{", "}") and not self.peek(-1).is_op("->"):
                break
            if token.is_op("(", "[", "{"):  # "{" here: $CFG->{'name'}
                depth += 1
            elif token.is_op(")", "]", "}"):
                depth -= 1
            self.pos += 1
        tokens = self.tokens[start : self.pos]
        if self.peek().is_op(";"):
            self.pos += 1
        certain = self.depth == 0 and not self.guarded
        self.guarded = False
        rest = self.record(tokens) if certain else tokens
        self.note_changes(rest, _CHANGED if certain else _CONDITIONAL)

    def record(self, tokens: list[Token]) -> list[Token]:
        """Apply a statement that surely runs; return the part still to be checked."""
        for handler in (self.assignment, self.reset, self.constant, self.setup):
            rest = handler(tokens)
            if rest is not None:
                return rest
        return tokens

    def assignment(self, tokens: list[Token]) -> Optional[list[Token]]:
        """``$CFG->dbhost = ...;`` and ``$CFG->dboptions['dbport'] = ...;``"""
        if not _is_cfg(tokens, 0) or len(tokens) < 4:
            return None
        prop, line = tokens[2].text, tokens[0].line
        if tokens[3].is_op("="):
            self.assign(prop, self.value(tokens[4:]), line)
            return tokens[4:]
        if prop == "dboptions" and tokens[3].is_op("["):
            close = _matching(tokens, 3)
            if close + 1 < len(tokens) and tokens[close + 1].is_op("="):
                key = self.value(tokens[4:close])
                self.assign_option(key, self.value(tokens[close + 2 :]), line)
                return tokens[close + 2 :]
        return None

    def reset(self, tokens: list[Token]) -> Optional[list[Token]]:
        """``$CFG = new stdClass();`` or ``unset($CFG);``: what was set before is gone."""
        first = tokens[0]
        assigned = first.kind == "var" and first.text == "CFG" and tokens[1:2] != []
        if (assigned and tokens[1].is_op("=")) or _is_unset_cfg(tokens):
            self.slots.clear()
            return tokens[2:]
        return None

    def constant(self, tokens: list[Token]) -> Optional[list[Token]]:
        """``define('NAME', literal);`` or ``const NAME = literal;``"""
        first = tokens[0]
        if first.is_word("define") and len(tokens) > 3 and tokens[1].is_op("("):
            args = tokens[2:-1] if tokens[-1].is_op(")") else []
            comma = next((i for i, t in enumerate(args) if t.is_op(",")), -1)
            name = self.value(args[:comma]) if comma > 0 else None
            if isinstance(name, str):
                self.constants[name] = self.value(args[comma + 1 :])
                return args[comma + 1 :]
        if first.is_word("const") and len(tokens) > 3 and tokens[2].is_op("="):
            self.constants[tokens[1].text] = self.value(tokens[3:])
            return tokens[3:]
        return None

    def setup(self, tokens: list[Token]) -> Optional[list[Token]]:
        """``require_once(__DIR__ . '/lib/setup.php');`` ends the configuration."""
        if tokens[0].is_word(*_INCLUDES) and _includes_setup(tokens):
            self.done = True
            return []
        return None

    def note_changes(self, tokens: Sequence[Token], reason: str) -> None:
        """Taint every field that ``tokens`` may change: ``$CFG->dbhost = ...`` hidden
        in a condition or a chain, ``$CFG->dbpass .= ...``, a dynamic ``$CFG->$name``,
        or an include of another file."""
        for index, token in enumerate(tokens):
            if token.is_word(*_INCLUDES) and not _includes_setup(tokens[index:]):
                why = "may be set in the file included here (includes are not followed)"
                for key in FIELDS:
                    self.slots[key] = Problem(why, token.line)
            for key in _changed_fields(tokens, index):
                self.slots[key] = Problem(reason, token.line)

    # -- assignments
    def assign(self, prop: str, value: PhpValue, line: int) -> None:
        if prop in _PROPERTIES:
            self.slots[_PROPERTIES[prop]] = _string_slot(value, line)
        elif prop == "dboptions":
            for option, key in _OPTIONS.items():
                if isinstance(value, PhpArray):
                    if option in value:
                        self.slots[key] = _option_slot(key, value[option], line)
                    elif value.unknown_keys:
                        self.slots[key] = Problem("has array keys that are not literal", line)
                    else:
                        self.slots[key] = _Value(None, line)
                else:
                    reason = value.reason if isinstance(value, Opaque) else "is not an array"
                    self.slots[key] = Problem(reason, line)

    def assign_option(self, option: PhpValue, value: PhpValue, line: int) -> None:
        """``$CFG->dboptions['dbport'] = 3307;``"""
        if isinstance(option, Opaque):
            for key in _OPTIONS.values():
                self.slots[key] = Problem("is set with a key that is not literal", line)
        elif isinstance(option, str) and option in _OPTIONS:
            key = _OPTIONS[option]
            self.slots[key] = _option_slot(key, value, line)

    # -- literal expressions
    def value(self, tokens: Sequence[Token]) -> PhpValue:
        """The literal ``tokens`` spell, else an :class:`Opaque` saying why not."""
        if not tokens:
            return Opaque("is not a literal value")
        try:
            result, end = self.expr(tokens, 0)
            if end != len(tokens):
                raise _NotLiteral()
            return result
        except _NotLiteral as exc:
            return Opaque(exc.reason)

    def expr(self, tokens: Sequence[Token], pos: int) -> tuple[PhpValue, int]:
        result, pos = self.term(tokens, pos)
        while pos < len(tokens) and tokens[pos].is_op("."):
            right, pos = self.term(tokens, pos + 1)
            result = _php_string(result) + _php_string(right)
        return result, pos

    def term(self, tokens: Sequence[Token], pos: int) -> tuple[PhpValue, int]:
        token = tokens[pos] if pos < len(tokens) else _EOF
        nxt = tokens[pos + 1] if pos + 1 < len(tokens) else _EOF
        if token.kind in ("str", "num"):
            if token.opaque is not None:
                raise _NotLiteral(token.opaque)
            return token.value, pos + 1
        if token.is_op("-", "+") and nxt.kind == "num" and nxt.opaque is None:
            number = nxt.value
            if isinstance(number, (int, float)) and not isinstance(number, bool):
                return (-number if token.text == "-" else number), pos + 2
        if token.is_word("array") and nxt.is_op("("):
            return self.elements(tokens, pos + 2, ")")
        if token.kind == "name" and not nxt.is_op("(", "::"):
            return self.name(token), pos + 1
        if token.is_op("["):
            return self.elements(tokens, pos + 1, "]")
        if token.is_op("("):
            inner, pos = self.expr(tokens, pos + 1)
            if pos < len(tokens) and tokens[pos].is_op(")"):
                return inner, pos + 1
        raise _NotLiteral()

    def name(self, token: Token) -> PhpValue:
        """true, false, null, or a constant config.php defined with a literal."""
        word = token.text.lower()
        if word in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[word]
        constant = self.constants.get(token.text, _UNDEFINED)
        if constant is _UNDEFINED:
            raise _NotLiteral(
                f"is the constant {token.text}, which config.php does not define() as text"
            )
        if isinstance(constant, Opaque):
            raise _NotLiteral(
                f"is the constant {token.text}, which config.php defines with a value PHP computes"
            )
        return constant

    def elements(self, tokens: Sequence[Token], pos: int, close: str) -> tuple[PhpArray, int]:
        """``key => value, value, ...`` up to ``close``; an element PHP would compute
        taints only itself (``'dbcollation' => getenv(...)`` leaves dbport readable)."""
        array = PhpArray()
        index = 0
        while True:
            if pos >= len(tokens):
                raise _NotLiteral()
            if tokens[pos].is_op(close):
                return array, pos + 1
            end = pos
            depth = 0
            while end < len(tokens) and not (depth == 0 and tokens[end].is_op(",", close)):
                depth += tokens[end].is_op("(", "[") - tokens[end].is_op(")", "]")
                end += 1
            item = tokens[pos:end]
            arrow = next((i for i, t in enumerate(item) if t.is_op("=>")), -1)
            value = self.value(item[arrow + 1 :])
            key = self.value(item[:arrow]) if arrow >= 0 else index
            spread = arrow < 0 and bool(item) and item[0].is_op("...")
            if isinstance(key, (str, int)) and not isinstance(key, bool) and not spread:
                array[key] = value
                if isinstance(key, int):
                    index = key + 1
            else:  # a computed key, or ...$spread: which keys there are is unknown
                array.unknown_keys = True
            pos = end + 1 if end < len(tokens) and tokens[end].is_op(",") else end

    def matching(self, index: int) -> int:
        end = _matching(self.tokens, index)
        if end >= len(self.tokens):
            self.fail("ends in the middle of a statement", self.tokens[index].line)
        return end


def _changed_fields(tokens: Sequence[Token], index: int) -> Sequence[str]:
    """The fields that a change of ``$CFG->...`` starting at ``index`` may set."""
    start = tokens[index : index + 2]
    is_cfg = len(tokens) > index + 2 and start[0].kind == "var" and start[0].text == "CFG"
    if not (is_cfg and start[1].is_op("->")):
        return ()
    prop = tokens[index + 2]
    after = _matching(tokens, index + 2) + 1 if prop.is_op("{") else index + 3
    while after < len(tokens) and tokens[after].is_op("["):
        after = _matching(tokens, after) + 1
    if after >= len(tokens) or not tokens[after].is_op(*_CHANGE_OPS):
        return ()
    if prop.kind != "name":  # $CFG->$name or $CFG->{...}: could be any of them
        return FIELDS
    if prop.text != "dboptions":
        return (_PROPERTIES[prop.text],) if prop.text in _PROPERTIES else ()
    option = tokens[index + 4].value if after > index + 3 else None
    if not isinstance(option, str):  # the whole array, or a key PHP computes
        return tuple(_OPTIONS.values())
    return tuple(_OPTIONS[name] for name in (option,) if name in _OPTIONS)


def _is_cfg(tokens: Sequence[Token], index: int) -> bool:
    """``$CFG->name`` at ``index``."""
    return (
        len(tokens) > index + 2
        and tokens[index].kind == "var"
        and tokens[index].text == "CFG"
        and tokens[index + 1].is_op("->")
        and tokens[index + 2].kind == "name"
    )


def _is_unset_cfg(tokens: Sequence[Token]) -> bool:
    return (
        len(tokens) == 4
        and tokens[0].is_word("unset")
        and tokens[1].is_op("(")
        and tokens[2].kind == "var"
        and tokens[2].text == "CFG"
        and tokens[3].is_op(")")
    )


def _includes_setup(tokens: Sequence[Token]) -> bool:
    """``require_once(__DIR__ . '/lib/setup.php')``: Moodle's own bootstrap, which sets
    no database setting (it uses them); its argument is the first string that follows."""
    path = next((t.value for t in tokens[1:] if t.kind == "str"), None)
    return isinstance(path, str) and path.replace("\\", "/").endswith("lib/setup.php")


def _matching(tokens: Sequence[Token], index: int) -> int:
    """Index of the bracket closing the one at ``index`` (``len(tokens)`` if none)."""
    depth = 0
    for pos in range(index, len(tokens)):
        depth += tokens[pos].is_op("(", "[", "{") - tokens[pos].is_op(")", "]", "}")
        if depth == 0:
            return pos
    return len(tokens)


def _php_string(value: PhpValue) -> str:
    """PHP's ``.`` for the scalar literals whose string form is unambiguous."""
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
    return "an array" if isinstance(value, PhpArray) else "a string"


def _string_slot(value: PhpValue, line: int) -> Union[_Value, Problem]:
    """dbhost, dbname, dbuser, dbpass, prefix, dbtype: a string (an int is taken as
    its digits, as PHP would). Never quote the value: it may be the password."""
    if isinstance(value, Opaque):
        return Problem(value.reason, line)
    if isinstance(value, str):
        return _Value(value, line)
    if isinstance(value, int) and not isinstance(value, bool):
        return _Value(str(value), line)
    return Problem(f"is {_type_name(value)}, not a string", line)


def _option_slot(key: str, value: PhpValue, line: int) -> Union[_Value, Problem]:
    """One ``dboptions`` entry that matters: ``dbport`` or ``dbsocket``."""
    if isinstance(value, Opaque):
        return Problem(value.reason, line)
    return _port_slot(value, line) if key == "port" else _socket_slot(value, line)


def _port_slot(value: PhpValue, line: int) -> Union[_Value, Problem]:
    """'' / 0 / '0' / null / false mean Moodle's default port (None), as PHP's empty()
    does in Moodle's driver; a number or a numeric string is the port."""
    if value is None or value is False or value in ("", "0"):
        return _Value(None, line)
    if isinstance(value, int) and not isinstance(value, bool):
        return _Value(value or None, line)
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,9}\s*", value):
        return _Value(int(value) or None, line)
    shown = f"{value!r}" if isinstance(value, str) and len(value) <= 40 else _type_name(value)
    return Problem(f"is {shown}, not a port number", line)


def _socket_slot(value: PhpValue, line: int) -> Union[_Value, Problem]:
    """false / true / '' / null mean "no explicit socket" (None); a string is a path."""
    if value is None or isinstance(value, bool) or value == "":
        return _Value(None, line)
    if isinstance(value, str):
        return _Value(value, line)
    return Problem(f"is {_type_name(value)}, not a socket path", line)
