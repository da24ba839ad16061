"""Text that fits the terminal: every line wrapped to its width, with hanging indents, and
never inside `inline code` or a terminal style.

The views write their lines at the width they like; `fit` rewraps, at output, each line
that is wider than the terminal: the words after a line's label ("hint:  ...") or its first
columns ("  FAIL  reach   ...") line up under where they began, so a table stays a table.
A word is never split; inline code (`iptables -t nat -S`) counts as one word, so a command a
learner copies is whole on one line. Standard library only (textwrap's own breaking splits
code and counts terminal styles as width, so the words are laid out here).
"""

from __future__ import annotations

import re

STYLE = re.compile(r"\x1b\[[0-9;]*m")
# a word: inline code (with its spaces) or a run of non-spaces, styles included
WORD = re.compile(r"(?:\x1b\[[0-9;]*m)*`[^`\n]*`\S*|\S+")
# where the text of a labelled or tabular line begins: after a label and its spaces
# ("  hint:  "), or after the last run of two or more spaces early in the line
LABEL = re.compile(r"^\s*[A-Za-z][\w ./-]{0,20}:\s+")
GAP = re.compile(r"\S(\s{2,})")


def visible(text: str) -> int:
    """Columns the text takes on a terminal (its styles take none)."""
    return len(STYLE.sub("", text))


def fit(text: str, width: int) -> str:
    """Every line of `text` no wider than `width` (but a single word that is wider)."""
    if width <= 0:
        return text
    return "\n".join(out for line in text.split("\n") for out in _fit_line(line, width))


def _hang(line: str, width: int) -> int:
    """The column where the continuation of `line` goes."""
    plain = STYLE.sub("", line)
    lead = len(plain) - len(plain.lstrip(" "))
    at = lead + 2
    label = LABEL.match(plain)
    if label and label.end() <= width // 2:
        return label.end()
    for gap in GAP.finditer(plain, lead):
        if gap.end() > width // 2:
            break
        at = gap.end()
    return at


def _fit_line(line: str, width: int) -> list[str]:
    if visible(line) <= width:
        return [line]
    hang = " " * min(_hang(line, width), width // 2)
    room = width - len(hang)
    lines: list[str] = []
    current, used = "", 0
    for sep, word, breaks in _tokens(line, room):
        size = visible(word)
        if current.strip() and used + len(sep or " ") + size > width:
            lines.append(current.rstrip())
            current, used = hang + word, len(hang) + size
        else:
            gap = sep if not lines else (sep and " ")  # the first line keeps its spacing
            current, used = current + gap + word, used + len(gap) + size
        if breaks:  # a long command goes on over the next line (the shell reads it so)
            lines.append(current)
            current, used = hang + "  ", len(hang) + 2
    if current.strip():
        lines.append(current.rstrip())
    return lines


def _tokens(line: str, room: int) -> list[tuple[str, str, bool]]:
    """(the spaces before, the word, whether a line break follows it) for each word; inline
    code wider than `room` is cut at its spaces, each piece but the last ending in ` \\`."""
    out: list[tuple[str, str, bool]] = []
    at = 0
    for m in WORD.finditer(line):
        sep, word = line[at:m.start()], m.group(0)
        at = m.end()
        if "`" in word and " " in word and visible(word) > room:
            parts = word.split(" ")
            piece = ""
            for part in parts:
                if piece and visible(piece) + 1 + visible(part) + 2 > room - 2:
                    out.append((sep, piece + " \\", True))
                    sep, piece = "", part
                else:
                    piece = f"{piece} {part}" if piece else part
            out.append((sep, piece, False))
        else:
            out.append((sep, word, False))
    return out


def protect_code(text: str) -> str:
    """`text` with the spaces inside inline code made unbreakable for textwrap (undo with
    `release_code`)."""
    return re.sub(r"`[^`\n]*`", lambda m: m.group(0).replace(" ", "\x00"), text)


def release_code(text: str) -> str:
    return text.replace("\x00", " ")
