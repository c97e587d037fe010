"""Make text from the network safe to print.

A greeting is chosen by whoever answers on port 25, so it may hold ANSI/OSC escape
sequences (recolour or retitle the terminal, write a hyperlink, even set the clipboard
on some terminals), NULs, backspaces that overwrite what came before, or bidi controls
that reorder the line. Everything of that kind is shown as an escape (``\\x1b``,
``\\u202e``) so the user sees exactly what was sent and the terminal executes nothing.
"""

from __future__ import annotations

import unicodedata


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(text: str, *, keep_newlines: bool = False) -> str:
    r"""``text`` with every control, format and separator character made visible.

    Categories Cc (C0, DEL, C1), Cf (bidi overrides, zero-width) and Zl/Zp are escaped;
    ordinary spaces and printable characters are left alone. (Bytes that were not UTF-8
    already arrive as ``\xNN`` from ``decode_text``.)
    """
    out = []
    for ch in text:
        if (
            (ch == "\n" and keep_newlines)
            or ch == " "
            or (ch.isprintable() and unicodedata.category(ch) not in ("Cf",))
        ):
            out.append(ch)
        else:
            out.append(_escape(ch))
    return "".join(out)


def shorten(text: str, width: int) -> str:
    """Cut to ``width`` characters with an ellipsis; ``text`` must already be visible."""
    if width <= 1 or len(text) <= width:
        return text
    return text[: width - 1] + "…"


def one_line(text: str) -> str:
    """``text`` with every run of white space (newlines too) folded to one space."""
    return " ".join(text.split())
