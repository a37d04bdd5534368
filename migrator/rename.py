r"""Elasticsearch's index rename on restore, reproduced exactly in Python.

Place in the flow: plan spec (``restore.rename_pattern`` / ``rename_replacement``, validated here when the
plan loads) → planner (predicts each restored index name with :class:`RenameRule`) → DAG → executor →
steps → clients → state.

Elasticsearch renames every restored index with Java's ``indexName.replaceAll(pattern, replacement)``.
This module translates the ``java.util.regex`` pattern into an equivalent Python :mod:`re` pattern and
replays ``Matcher.replaceAll``: Java's rule for advancing after an empty match (one UTF-16 unit, which can
split a surrogate pair), Java's replacement syntax (``$n`` taking as many digits as still name a group,
``${name}``, backslash escapes) and Java's errors.  The reference is JDK 17 (tests/RenameOracle.java).

What Python cannot reproduce exactly is refused with a :class:`RenameError` instead of approximated.
When the rule is built: nested or intersected character classes, Unicode properties (the ASCII POSIX
classes such as ``\p{Lower}`` are fine), ``\G``, ``\X``, ``\N{...}``, ``\b{g}``, the ``u``, ``U``,
``x`` and ``c`` flags, variable-width look-behinds, backreferences to a group not closed before them,
and references to a group whose capture Java can leave stale (inside a look-around, an atomic group, a
possessive quantifier, or nested in a repeated group).  When a name is renamed: ``\b``/``\B`` on a
non-ASCII name (JDK 19 changed their meaning there) and a look-behind over a supplementary character
(Java measures those in UTF-16 units).

Over 400 lines: a translator of Java's regular expressions (what Elasticsearch compiles the rename with)
and of its replacement syntax, kept whole so that its one contract (the same names as Elasticsearch) reads in
one place.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["RenameError", "RenameRule", "java_replace_all"]

_TERMINATORS = "\n\r\x85\u2028\u2029"  # Java's line terminators (without UNIX_LINES)
_CLASS_ESCAPES = {
    "d": r"\d",  # compiled with re.ASCII, Python's \d \w \s are exactly Java's defaults
    "D": r"\D",
    "w": r"\w",
    "W": r"\W",
    "s": r"\s",
    "S": r"\S",
}
_HORIZONTAL = " \t\xa0\u1680\u180e\u2000-\u200a\u202f\u205f\u3000"
_VERTICAL = "\n\x0b\f\r\x85\u2028\u2029"
_POSIX = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\x00-\x7f",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "Graph": "a-zA-Z0-9" + re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "Print": " a-zA-Z0-9" + re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "Blank": " \t",
    "Cntrl": "\x00-\x1f\x7f",
    "XDigit": "0-9a-fA-F",
    "Space": " \t\n\x0b\f\r",
}
_SUPPORTED_FLAGS = "imsd"
_KNOWN_FLAGS = "imsduxUc"
_QUOTE_END = "\\E"
_STALE = (
    "Java can leave a stale capture in a group inside a look-around, an atomic group, a possessive "
    "quantifier or a repeated group, which migrator cannot reproduce"
)


class RenameError(ValueError):
    """A rename rule Elasticsearch would reject (or migrator cannot reproduce exactly).

    ``part`` says which half of the rule is wrong: ``"pattern"`` or ``"replacement"``.
    """

    def __init__(self, message: str, part: Literal["pattern", "replacement"]) -> None:
        super().__init__(message)
        self.part: Literal["pattern", "replacement"] = part


@dataclass(frozen=True)
class _JavaRegex:
    """A Java pattern translated to Python, with what the replacement parser needs to know about it."""

    source: str  # the Java pattern
    regex: re.Pattern[str]
    group_count: int
    names: dict[str, int]
    stale: frozenset[int]  # groups whose captures Java can leave stale (see note_stale_captures)
    word_boundary: bool  # uses a word boundary, \b or \B
    lookbehind: bool  # has a look-behind that Java measures in UTF-16 units (no literal supplementary char)
    supplementary: bool  # Java's Pattern.hasSupplementary: matches start only at code point boundaries


@dataclass(frozen=True)
class _Char:
    """A single character in a pattern (literal or escaped)."""

    code: int


@dataclass(frozen=True)
class _Set:
    """A predefined class: ``inner`` fits inside ``[...]`` (None if it cannot), ``outer`` stands alone."""

    inner: str | None
    outer: str
    bmp: bool  # Java's predicate is a BmpCharPredicate (else it sets hasSupplementary)


@dataclass(frozen=True)
class _Node:
    """A zero-width assertion or a backreference (never valid inside a character class)."""

    text: str
    folds: bool  # True when Java's case-insensitive flag applies to it (backreferences)


_Token = str | int  # literal text, or a group number to insert


class _Translator:
    """Recursive-descent parser of java.util.regex syntax that emits an equivalent Python pattern."""

    def __init__(self, pattern: str) -> None:
        self.original = pattern
        self.src, self.where = _unquote(pattern)
        self.pos = 0
        self.flags = frozenset[str]()
        self.opened = 0
        self.closed: set[int] = set()
        self.names: dict[str, int] = {}
        self.word_boundary = False
        self.behind = 0  # look-behind groups around the parser position (look-aheads reset it)
        self.unit_lookbehind = False  # a look-behind Java measures in UTF-16 units (its Behind node)
        self.stale: set[int] = set()  # groups whose captures Java may leave stale (unusable)
        self.supplementary = _has_supplementary(pattern)  # Java's Pattern.hasSupplementary

    # -- helpers -------------------------------------------------------------------------------------
    def error(self, what: str, at: int | None = None) -> RenameError:
        index = self.pos if at is None else at
        where = self.where[min(index, len(self.where) - 1)] if self.where else 0
        return RenameError(f"rename_pattern {self.original!r}: {what} (at index {where})", "pattern")

    def peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.src[index] if index < len(self.src) else ""

    def take(self) -> str:
        char = self.peek()
        self.pos += 1
        return char

    # -- grammar -------------------------------------------------------------------------------------
    def translate(self) -> str:
        text = self.alternation()
        if self.pos < len(self.src):
            raise self.error("unmatched closing ')'")
        return text

    def alternation(self) -> str:
        # Java keeps a flag set by "(?i)" until the enclosing group ends, across "|".
        branches = [self.sequence()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.sequence())
        return "|".join(branches)

    def sequence(self) -> str:
        parts: list[str] = []
        run: list[int] = []  # the literal characters Java's atom() is collecting into one node
        while self.pos < len(self.src) and self.peek() not in "|)":
            char = self.peek()
            code: int | None = None
            first_group = self.opened + 1
            capturing = char == "(" and (self.peek(1) != "?" or (self.peek(2) == "<" and self.peek(3) not in "=!"))
            if char == "(":
                self.end_run(run)
                group = self.group()
                if group is None:  # a flag directive such as "(?i)": nothing to quantify
                    continue
                atom = group
            elif char == "[":
                atom = self.case(self.char_class())
            elif char == "\\":
                item = self.escape(in_class=False)
                if isinstance(item, _Char):
                    code = item.code
                    atom = self.case(re.escape(chr(code)))
                elif isinstance(item, _Set):
                    self.supplementary |= not item.bmp
                    atom = self.case(item.outer)
                else:
                    atom = self.case(item.text) if item.folds else item.text
            elif char == "^":
                self.pos += 1
                atom = self.caret()
            elif char == "$":
                self.pos += 1
                atom = self.dollar(multiline="m" in self.flags)
            elif char == ".":
                self.pos += 1
                atom = self.dot()
            elif char == "{":  # Java quantifies an empty string here ("a{2}{3}", "(?i){2}")
                atom = "(?:)"
            elif char in "*+?":
                raise self.error(f"dangling meta character {char!r}")
            else:
                self.pos += 1
                code = ord(char)
                atom = self.case(re.escape(char))
            quantifier = self.quantifier()
            if quantifier and char == "(":
                self.note_stale_captures(first_group, quantifier, capturing)
            if code is None:
                self.end_run(run)
            elif quantifier:  # Java splits a quantified character off its run
                self.end_run(run)
                self.end_run([code])
            else:
                run.append(code)
            parts.append(atom + quantifier)
        self.end_run(run)
        return "".join(parts)

    def note_stale_captures(self, first_group: int, quantifier: str, capturing: bool) -> None:
        """Mark the groups of a quantified group whose captures Java can leave behind after backtracking.

        A possessive quantifier keeps every capture inside it; a repeating quantifier (Java's GroupCurly)
        restores only the capture of the repeated group itself, and leaves even that one unset after an
        empty iteration when it may repeat zero times; ``?`` and ``??`` restore everything.
        """
        inside = range(first_group, self.opened + 1)
        if quantifier.endswith("+") and len(quantifier) > 1:
            self.stale.update(inside)
        elif quantifier[0] != "?":
            self.stale.update(n for n in inside if n != first_group or not capturing)
            if capturing and (quantifier[0] == "*" or quantifier.startswith("{0")):
                # Repeated from zero times, a group that matched only the empty string is left unset by Java
                # (`()*\1` never matches) but set to "" by Python: found by the generated oracle cases.
                self.stale.add(first_group)

    def end_run(self, run: list[int]) -> None:
        # Java makes a one-character run a single-character node; a supplementary one sets hasSupplementary.
        if len(run) == 1 and _is_supplementary(run[0]):
            self.supplementary = True
        run.clear()

    def quantifier(self) -> str:
        char = self.peek()
        if char in ("*", "+", "?"):
            self.pos += 1
            text = char
        elif char == "{":
            found = re.compile(r"\{(\d+)(?:(,)(\d*))?\}").match(self.src, self.pos)
            if found is None:
                raise self.error("illegal repetition")
            low = int(found.group(1))
            high = int(found.group(3)) if found.group(3) else None
            if max(low, high or 0) > 2**31 - 1:
                raise self.error("illegal repetition (count too large)")
            if high is not None and high < low:
                raise self.error("illegal repetition range")
            self.pos = found.end()
            text = found.group(0)
        else:
            return ""
        if self.peek() in ("?", "+"):
            text += self.take()
        return text

    def case(self, atom: str) -> str:
        return f"(?i:{atom})" if "i" in self.flags else atom

    def group(self) -> str | None:
        start = self.pos
        self.pos += 1
        saved = self.flags
        if self.peek() != "?":
            return f"({self.capture(start, saved)})"
        self.pos += 1
        kind = self.take()
        if kind in (":", ">"):
            first = self.opened + 1
            body = self.alternation()
            self.close_group(start, saved)
            if kind == ">":  # Java keeps the captures of an atomic group when what follows fails
                self.stale.update(range(first, self.opened + 1))
            return f"(?{kind}{body})"
        if kind in ("=", "!"):
            return f"(?:(?{kind}{self.lookaround(start, saved, behind=False)}))"
        if kind == "<" and self.peek() in ("=", "!"):
            look = self.take()
            return f"(?:(?<{look}{self.lookaround(start, saved, behind=True)}))"
        if kind == "<":
            name = self.group_name()
            self.names[name] = self.opened + 1
            return f"(?P<{name}>{self.capture(start, saved)})"
        self.pos -= 1
        flags = self.flag_change()
        terminator = self.take()
        if terminator == ")":
            self.flags = flags  # lasts until the enclosing group closes
            return None
        if terminator != ":":
            raise self.error("unknown inline modifier", self.pos - 1)
        self.flags = flags
        body = self.alternation()
        self.close_group(start, saved)
        return f"(?:{body})"

    def capture(self, start: int, saved: frozenset[str]) -> str:
        self.opened += 1
        number = self.opened
        body = self.alternation()
        self.close_group(start, saved)
        self.closed.add(number)
        return body

    def lookaround(self, start: int, saved: frozenset[str], behind: bool) -> str:
        outer = self.behind
        self.behind = outer + 1 if behind else 0  # Java does not measure look-aheads inside look-behinds
        if behind and not _has_supplementary(self.original[self.where[start] :]):
            self.unit_lookbehind = True  # Java picks BehindS only for a literal supplementary char after it
        first = self.opened + 1
        body = self.alternation()
        self.stale.update(range(first, self.opened + 1))  # Java keeps captures of abandoned look-arounds
        self.behind = outer
        self.close_group(start, saved)
        return body

    def close_group(self, start: int, saved: frozenset[str]) -> None:
        if self.take() != ")":
            raise self.error("unclosed group", start)
        self.flags = saved

    def group_name(self) -> str:
        found = re.compile(r"[A-Za-z][A-Za-z0-9]*").match(self.src, self.pos)
        if found is None:
            raise self.error("capturing group name does not start with a Latin letter")
        self.pos = found.end()
        if self.take() != ">":
            raise self.error("named capturing group is missing trailing '>'", self.pos - 1)
        name = found.group(0)
        if name in self.names:
            raise self.error(f"named capturing group <{name}> is already defined")
        return name

    def flag_change(self) -> frozenset[str]:
        flags = set(self.flags)
        adding = True
        while self.peek() and (self.peek() in _KNOWN_FLAGS or self.peek() == "-"):
            char = self.take()
            if char == "-":
                if not adding:
                    raise self.error("unknown inline modifier", self.pos - 1)
                adding = False
            elif char not in _SUPPORTED_FLAGS:
                raise self.error(f"the inline flag {char!r} is not supported by migrator", self.pos - 1)
            elif adding:
                flags.add(char)
            else:
                flags.discard(char)
        return frozenset(flags)

    # -- anchors and dot -----------------------------------------------------------------------------
    def caret(self) -> str:
        if "m" not in self.flags:
            return r"(?:\A)"
        if "d" in self.flags:
            return r"(?:(?!\Z)(?:\A|(?<=\n)))"
        # Java: after any line terminator (not between \r and \n), never at the very end of the input.
        return rf"(?:(?!\Z)(?:\A|(?<=[{_TERMINATORS}])(?!(?<=\r)\n)))"

    def dollar(self, multiline: bool) -> str:
        if "d" in self.flags:
            return r"(?=\n|\Z)" if multiline else r"(?=\n?\Z)"
        if multiline:
            return r"(?=\Z|(?<!\r)\n|[\r\x85\u2028\u2029])"
        return r"(?=(?:\r\n|(?<!\r)\n|[\r\x85\u2028\u2029])?\Z)"

    def dot(self) -> str:
        if "s" in self.flags:
            return r"(?s:.)"
        if "d" in self.flags:
            return r"[^\n]"
        return f"[^{_TERMINATORS}]"

    # -- escapes -------------------------------------------------------------------------------------
    def escape(self, in_class: bool) -> _Char | _Set | _Node:
        start = self.pos
        self.pos += 1
        char = self.take()
        if not char:
            raise self.error("unexpected end of pattern after '\\'", start)
        if char in _CLASS_ESCAPES:
            return _Set(_CLASS_ESCAPES[char], _CLASS_ESCAPES[char], bmp=char.islower())
        if char in "hHvV":
            members = _HORIZONTAL if char in "hH" else _VERTICAL
            negated = char.isupper()
            return _Set(None if negated else members, f"[{'^' if negated else ''}{members}]", bmp=not negated)
        if char in "pP":
            return self.property(negated=char == "P", start=start)
        simple = {"a": 7, "e": 27, "f": 12, "n": 10, "r": 13, "t": 9}
        if char in simple:
            return _Char(simple[char])
        if char == "0":
            return _Char(self.octal(start))
        if char == "x":
            return _Char(self.hexadecimal(start))
        if char == "u":
            return _Char(self.unicode(start))
        if char == "c":
            if not self.peek():
                raise self.error("illegal control escape sequence", start)
            return _Char(ord(self.take()) ^ 64)
        if in_class and char in "123456789AbBRXzZGkN":
            raise self.error(f"illegal/unsupported escape sequence '\\{char}' in a character class", start)
        if char in "123456789":
            return self.backreference(int(char), start)
        anchors = {
            "A": r"(?:\A)",
            "z": r"(?:\Z)",
            "R": r"(?:\r\n|[\n\x0b\f\r\x85\u2028\u2029])",
        }
        if char in anchors:
            return _Node(anchors[char], folds=False)
        if char == "Z":
            return _Node(self.dollar(multiline=False), folds=False)
        if char in "bB":
            return self.boundary(negated=char == "B", start=start)
        if char == "k":
            return self.named_backreference(start)
        if char in "GXN":
            raise self.error(f"'\\{char}' is not supported by migrator", start)
        if char.isascii() and char.isalpha():
            raise self.error(f"illegal/unsupported escape sequence '\\{char}'", start)
        return _Char(ord(char))

    def octal(self, start: int) -> int:
        digits = ""
        while len(digits) < 3 and self.peek() and self.peek() in "01234567":
            if len(digits) == 2 and digits[0] > "3":
                break
            digits += self.take()
        if not digits:
            raise self.error("illegal octal escape sequence", start)
        return int(digits, 8)

    def hexadecimal(self, start: int) -> int:
        if self.peek() == "{":
            found = re.compile(r"\{([0-9a-fA-F]+)\}").match(self.src, self.pos)
            if found is None or int(found.group(1), 16) > sys.maxunicode:
                raise self.error("illegal hexadecimal escape sequence", start)
            self.pos = found.end()
            return int(found.group(1), 16)
        found = re.compile(r"[0-9a-fA-F]{2}").match(self.src, self.pos)
        if found is None:
            raise self.error("illegal hexadecimal escape sequence", start)
        self.pos = found.end()
        return int(found.group(0), 16)

    def unicode(self, start: int) -> int:
        found = re.compile(r"[0-9a-fA-F]{4}").match(self.src, self.pos)
        if found is None:
            raise self.error("illegal Unicode escape sequence", start)
        self.pos = found.end()
        code = int(found.group(0), 16)
        low = re.compile(r"\\u(d[c-f][0-9a-f]{2})", re.IGNORECASE).match(self.src, self.pos)
        if 0xD800 <= code <= 0xDBFF and low is not None:  # Java joins an escaped surrogate pair
            self.pos = low.end()
            return 0x10000 + ((code - 0xD800) << 10) + (int(low.group(1), 16) - 0xDC00)
        return code

    def property(self, negated: bool, start: int) -> _Set:
        found = re.compile(r"\{([^}]*)\}|([A-Za-z])").match(self.src, self.pos)
        if found is None:
            raise self.error("illegal character property", start)
        self.pos = found.end()
        name = found.group(1) if found.group(1) is not None else found.group(2)
        if name not in _POSIX:
            raise self.error(
                f"the character property {name!r} is not supported by migrator "
                f"(supported: {', '.join(sorted(_POSIX))})",
                start,
            )
        members = _POSIX[name]
        self.supplementary |= negated  # Java's family() does this for \\P{...}, even inside [...]
        return _Set(None if negated else members, f"[{'^' if negated else ''}{members}]", bmp=not negated)

    def backreference(self, number: int, start: int) -> _Node:
        # Java takes further digits while they still form the number of a group opened so far.
        while self.peek().isdigit() and self.peek().isascii() and number * 10 + int(self.peek()) <= self.opened:
            number = number * 10 + int(self.take())
        if self.behind:
            raise self.error("look-behind group does not have an obvious maximum length (backreference)", start)
        if number not in self.closed:
            raise self.error(
                f"backreference \\{number} must refer to a group closed before it (migrator cannot "
                "reproduce Java's handling of other references)",
                start,
            )
        if number in self.stale:
            raise self.error(f"backreference \\{number}: {_STALE}", start)
        return _Node(f"(?:\\{number})", folds=True)

    def named_backreference(self, start: int) -> _Node:
        found = re.compile(r"<([A-Za-z][A-Za-z0-9]*)>").match(self.src, self.pos)
        if found is None:
            raise self.error("\\k is not followed by <name>", start)
        self.pos = found.end()
        name = found.group(1)
        if self.behind:
            raise self.error("look-behind group does not have an obvious maximum length (backreference)", start)
        if name not in self.names:
            raise self.error(f"named capturing group <{name}> does not exist", start)
        if self.names[name] not in self.closed:
            raise self.error(
                f"backreference \\k<{name}> must refer to a group closed before it (migrator cannot "
                "reproduce Java's handling of other references)",
                start,
            )
        if self.names[name] in self.stale:
            raise self.error(f"backreference \\k<{name}>: {_STALE}", start)
        return _Node(f"(?P={name})", folds=True)

    def boundary(self, negated: bool, start: int) -> _Node:
        if not negated and self.src.startswith("{g", self.pos):
            raise self.error("'\\b{g}' (grapheme boundaries) is not supported by migrator", start)
        self.word_boundary = True
        # Python's own \\B never matches an empty string; Java's does.  \\w is ASCII (re.ASCII).
        if negated:
            return _Node(r"(?:(?<=\w)(?=\w)|(?<!\w)(?!\w))", folds=False)
        return _Node(r"(?:(?<=\w)(?!\w)|(?<!\w)(?=\w))", folds=False)

    # -- character classes ---------------------------------------------------------------------------
    def char_class(self) -> str:
        start = self.pos
        self.pos += 1
        negated = self.peek() == "^"
        if negated:
            self.pos += 1
        members: list[str] = []
        bmp = not negated  # Java negates a class with a predicate that is not a BmpCharPredicate
        while True:
            char = self.peek()
            if not char:
                raise self.error("unclosed character class", start)
            if char == "]" and members:
                self.pos += 1
                self.supplementary |= not bmp
                return f"[{'^' if negated else ''}{''.join(members)}]"
            if char == "[":
                raise self.error("nested character classes (unions) are not supported by migrator")
            if char == "&" and self.peek(1) == "&":
                raise self.error("character class intersections (&&) are not supported by migrator")
            member, member_bmp = self.class_member()
            members.append(member)
            bmp &= member_bmp

    def class_member(self) -> tuple[str, bool]:
        """One member of a class, and whether Java's predicate for it is a BmpCharPredicate."""
        item_start = self.pos
        item = self.escape(in_class=True) if self.peek() == "\\" else _Char(ord(self.take()))
        if isinstance(item, _Set):
            if item.inner is None:
                raise self.error("a negated class escape inside [...] is not supported by migrator", item_start)
            return item.inner, item.bmp  # Java reads a "-" after a class escape as the next member, a literal
        assert isinstance(item, _Char)
        if self.peek() != "-" or self.peek(1) in ("]", "[", ""):
            return re.escape(chr(item.code)), not _is_supplementary(item.code)
        self.pos += 1
        end_start = self.pos
        end = self.escape(in_class=True) if self.peek() == "\\" else _Char(ord(self.take()))
        if not isinstance(end, _Char) or end.code < item.code:
            raise self.error("illegal character range", end_start)
        low, high = item.code, end.code
        bmp = "i" not in self.flags and (high < 0xD800 or (low > 0xDFFF and high <= 0xFFFF))
        return f"{re.escape(chr(low))}-{re.escape(chr(high))}", bmp


def _is_supplementary(code: int) -> bool:
    """Java's Pattern.isSupplementary: outside the BMP, or a surrogate."""
    return code > 0xFFFF or 0xD800 <= code <= 0xDFFF


def _has_supplementary(text: str) -> bool:
    return any(_is_supplementary(ord(c)) for c in text)


def _unquote(pattern: str) -> tuple[str, list[int]]:
    r"""Replace Java's ``\Q...\E`` quoting by escaped characters, keeping a map to original indices."""
    if "\\Q" not in pattern:
        return pattern, list(range(len(pattern) + 1))
    out: list[str] = []
    where: list[int] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("\\Q", index):
            end = pattern.find(_QUOTE_END, index + 2)
            stop = len(pattern) if end < 0 else end
            for position in range(index + 2, stop):
                text = f"\\x{{{ord(pattern[position]):x}}}"
                out.append(text)
                where.extend([position] * len(text))
            index = stop if end < 0 else end + 2
        elif pattern[index] == "\\" and index + 1 < len(pattern):
            out.append(pattern[index : index + 2])
            where.extend([index, index + 1])
            index += 2
        else:
            out.append(pattern[index])
            where.append(index)
            index += 1
    where.append(len(pattern))
    return "".join(out), where


@functools.lru_cache(maxsize=512)
def _compile(pattern: str) -> _JavaRegex:
    translator = _Translator(pattern)
    try:
        text = translator.translate()
        regex = re.compile(text, re.ASCII)
    except RecursionError:
        raise RenameError(f"rename_pattern {pattern!r}: nested too deeply", "pattern") from None
    except re.error as exc:
        raise RenameError(f"rename_pattern {pattern!r}: not supported by migrator ({exc.msg})", "pattern") from None
    return _JavaRegex(
        source=pattern,
        regex=regex,
        group_count=translator.opened,
        names=dict(translator.names),
        stale=frozenset(translator.stale),
        word_boundary=translator.word_boundary,
        lookbehind=translator.unit_lookbehind,
        supplementary=translator.supplementary,
    )


def _parse_replacement(replacement: str, compiled: _JavaRegex) -> tuple[_Token, ...]:
    """Parse a replacement the way Java's ``Matcher.appendReplacement`` does, or raise RenameError."""

    def fail(what: str) -> RenameError:
        return RenameError(f"rename_replacement {replacement!r}: {what}", "replacement")

    tokens: list[_Token] = []
    literal: list[str] = []
    index = 0
    while index < len(replacement):
        char = replacement[index]
        index += 1
        if char == "\\":
            if index == len(replacement):
                raise fail("a trailing backslash escapes nothing (write \\\\ for a backslash)")
            literal.append(replacement[index])
            index += 1
            continue
        if char != "$":
            literal.append(char)
            continue
        if index == len(replacement):
            raise fail("'$' at the end is a group reference without a group (write \\$ for a dollar sign)")
        if replacement[index] == "{":
            found = re.compile(r"[A-Za-z0-9]*").match(replacement, index + 1)
            assert found is not None
            name = found.group(0)
            if not name:
                raise fail("'${' starts a named group reference with an empty name")
            if found.end() >= len(replacement) or replacement[found.end()] != "}":
                raise fail(f"named group reference '${{{name}' is missing its closing '}}'")
            if name[0].isdigit():
                raise fail(f"group name {{{name}}} starts with a digit")
            if name not in compiled.names:
                raise fail(f"the pattern has no group named {{{name}}}")
            number = compiled.names[name]
            index = found.end() + 1
        else:
            if not ("0" <= replacement[index] <= "9"):
                raise fail(f"'$' must be followed by a group number or {{name}}, not {replacement[index]!r}")
            number = int(replacement[index])
            index += 1
            # Java takes further digits while they still form an existing group number.
            while (
                index < len(replacement)
                and "0" <= replacement[index] <= "9"
                and number * 10 + int(replacement[index]) <= compiled.group_count
            ):
                number = number * 10 + int(replacement[index])
                index += 1
            if number > compiled.group_count:
                raise fail(f"there is no group {number} (the pattern has {compiled.group_count})")
        if number in compiled.stale:
            raise fail(f"group {number}: {_STALE}")
        if literal:
            tokens.append("".join(literal))
            literal = []
        tokens.append(number)
    if literal:
        tokens.append("".join(literal))
    return tuple(tokens)


def _utf16_offsets(text: str) -> list[int]:
    """UTF-16 index of every code point boundary of ``text`` (Java strings index UTF-16 units)."""
    offsets = [0]
    for char in text:
        offsets.append(offsets[-1] + (2 if ord(char) > 0xFFFF else 1))
    return offsets


def _split_surrogates(text: str) -> str:
    return "".join(
        chr(0xD800 + ((ord(c) - 0x10000) >> 10)) + chr(0xDC00 + ((ord(c) - 0x10000) & 0x3FF)) if ord(c) > 0xFFFF else c
        for c in text
    )


def _split_at(text: str, offsets: list[int], k: int) -> tuple[str, Callable[[int], int]]:
    """``text`` with the supplementary character at index ``k`` split into its two surrogates.

    That is what Java's matcher sees when it starts between the two halves of the pair.  Returns the
    view and the map from view indices back to UTF-16 indices.
    """

    def to16(index: int) -> int:
        return offsets[index] if index <= k else offsets[k] + 1 if index == k + 1 else offsets[index - 1]

    return text[:k] + _split_surrogates(text[k]) + text[k + 1 :], to16


def _find(
    compiled: _JavaRegex, text: str, offsets: list[int], at16: int
) -> tuple[re.Match[str], Callable[[int], int]] | None:
    """Java's ``Matcher.find()`` from UTF-16 index ``at16``: the match and the map from its string to UTF-16.

    Java tries every UTF-16 position in turn, so it can start a match between the two halves of a
    surrogate pair: always at ``at16`` itself, and anywhere when the pattern does not contain a
    supplementary character (Java's ``Start`` node rather than ``StartS``).
    """
    regex = compiled.regex
    index = {unit: i for i, unit in enumerate(offsets)}
    start = index.get(at16)
    if start is None:  # inside the pair of character k
        k = index[at16 - 1]
        view, to16 = _split_at(text, offsets, k)
        inside = regex.match(view, k + 1)
        if inside is not None:
            return inside, to16
        start = k + 1
    match = regex.search(text, start)
    if not compiled.supplementary:
        limit = len(text) if match is None else match.start()
        for k in range(start, limit):
            if ord(text[k]) > 0xFFFF:
                view, to16 = _split_at(text, offsets, k)
                inside = regex.match(view, k + 1)
                if inside is not None:
                    return inside, to16
    return None if match is None else (match, offsets.__getitem__)


def _replace(compiled: _JavaRegex, text: str, replacement: str | Sequence[_Token]) -> str:
    """Java's ``Matcher.replaceAll``; a str replacement is parsed only once something matched."""
    if compiled.word_boundary and not text.isascii():
        raise RenameError(
            f"Java's \\b/\\B (pattern {compiled.source!r}) on the non-ASCII name {text!r} depends on the "
            "JDK Elasticsearch runs on (JDK 19 changed it), so migrator cannot predict it",
            "pattern",
        )
    if compiled.lookbehind and any(ord(c) > 0xFFFF for c in text):
        raise RenameError(
            f"migrator cannot reproduce Java's look-behind (pattern {compiled.source!r}) over the "
            f"supplementary characters in {text!r}",
            "pattern",
        )
    offsets = _utf16_offsets(text)
    units = _split_surrogates(text)
    tokens = None if isinstance(replacement, str) else tuple(replacement)
    pieces: list[str] = []
    last = at = 0  # UTF-16 indices: end of the previous match, start of the next search
    while at <= offsets[-1]:
        found = _find(compiled, text, offsets, at)
        if found is None:
            break
        match, to16 = found
        if tokens is None:
            assert isinstance(replacement, str)
            tokens = _parse_replacement(replacement, compiled)
        begin, end = to16(match.start()), to16(match.end())
        pieces.append(units[last:begin])
        pieces.extend(t if isinstance(t, str) else match.group(t) or "" for t in tokens)
        last = end
        at = end + 1 if begin == end else end  # Java's Matcher.find() after an empty match
    if not pieces:
        return text
    pieces.append(units[last:])
    return "".join(pieces).encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def java_replace_all(text: str, pattern: str, replacement: str) -> str:
    """Java's ``text.replaceAll(pattern, replacement)``, raising RenameError where Java throws.

    Like Java, a bad replacement is only noticed once the pattern matches; a bad pattern always is.
    """
    return _replace(_compile(pattern), text, replacement)


@dataclass(frozen=True)
class RenameRule:
    """Elasticsearch's ``rename_pattern`` / ``rename_replacement`` pair, validated when built.

    Both halves are given or neither (then the rule renames nothing).  Unlike Elasticsearch, which only
    notices a bad replacement when an index matches, the rule checks the replacement up front.
    """

    pattern: str | None = None
    replacement: str | None = None
    _compiled: _JavaRegex | None = field(init=False, repr=False, compare=False, default=None)
    _tokens: tuple[_Token, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        if self.pattern is None and self.replacement is None:
            return
        if self.pattern is None:
            raise RenameError(f"rename_replacement {self.replacement!r} is given without a rename_pattern", "pattern")
        if self.replacement is None:
            raise RenameError(f"rename_pattern {self.pattern!r} is given without a rename_replacement", "replacement")
        compiled = _compile(self.pattern)
        object.__setattr__(self, "_compiled", compiled)
        object.__setattr__(self, "_tokens", _parse_replacement(self.replacement, compiled))

    def apply(self, name: str) -> str:
        """The name Elasticsearch gives the restored copy of index ``name``."""
        if self._compiled is None:
            return name
        return _replace(self._compiled, name, self._tokens)
