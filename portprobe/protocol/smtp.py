"""Sans-I/O SMTP reply reading, in the spirit of h11: bytes in, replies out, no sockets.

RFC 5321 §4.2: a reply is one or more lines ``NNN-text`` ending with ``NNN text`` (or a
bare ``NNN``), every line carrying the same code. §4.5.3.1.5 bounds a reply line at 512
octets; real servers overshoot a little, hostile ones by megabytes, so every limit here
is enforced while bytes arrive, never after they have piled up.

We accept a bare LF as well as CRLF (some middleboxes and old MTAs send it; §2.3.8 says
receivers "SHOULD NOT recognize" it, but a prober that refused it would call a working
server ``not-smtp``). Text that is not UTF-8 is kept, with the bad bytes escaped.

``ReplyReader.next_reply()`` returns a ``Reply``, or ``NEED_DATA``, or raises
``SMTPProtocolError`` (not an SMTP reply) / ``ReplyLimitError`` (too long, too many) /
``PeerClosed`` (after ``feed(b"")``, h11's EOF, with no complete reply left).
``encode_command`` is the writing half: the only four commands portprobe sends.
``trailing_data`` gives the bytes after the last reply: RFC 3207 §4.2 says data that
arrives after the STARTTLS ``220`` and before the handshake must be discarded, and its
presence is evidence of an injection or a broken middlebox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from portprobe.model import Reply


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()


class SMTPProtocolError(Exception):
    """The peer sent something that is not an SMTP reply."""


class PeerClosed(Exception):
    """The peer closed the connection (``feed(b"")``) before a complete reply."""

    def __init__(self, partial: bool) -> None:
        super().__init__(
            "peer closed the connection in the middle of a reply"
            if partial
            else "peer closed the connection"
        )
        self.partial = partial


class ReplyLimitError(SMTPProtocolError):
    """The peer's reply exceeded a bound (line length, line count, total bytes)."""


@dataclass(frozen=True)
class ReplyLimits:
    # RFC 5321 §4.5.3.1.5: 512 octets per reply line; 4x that before we call it hostile.
    max_line: int = 2048
    # An EHLO reply from a busy MTA has ~15 lines; 200 leaves room for chatty banners.
    max_lines: int = 200
    # Bytes in one reply, all lines together.
    max_bytes: int = 64 * 1024


DEFAULT_LIMITS: Final = ReplyLimits()

# Reply-code per RFC 5321 §4.2: first digit 2-5, second 0-5, third 0-9.
_LINE_RE: Final = re.compile(rb"^([2-5][0-5][0-9])([ -]?)(.*)$", re.DOTALL)
# RFC 3463 enhanced status code, e.g. "5.7.1", at the start of the text.
_ENHANCED_RE: Final = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")


def decode_text(raw: bytes) -> str:
    """UTF-8 where it is UTF-8 (RFC 6531 servers), the other bytes as ``\\xNN``."""
    return raw.decode("utf-8", errors="backslashreplace")


class ReplyReader:
    """Reads SMTP replies from a byte stream fed in arbitrary pieces."""

    def __init__(self, limits: ReplyLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buf = bytearray()
        self._scan_from = 0  # where to look for the next newline
        self._code: bytes | None = None
        self._lines: list[str] = []
        self._reply_bytes = 0
        self._eof = False

    def feed(self, data: bytes | bytearray) -> None:
        """Bytes from the peer; ``feed(b"")`` means the peer closed (h11's EOF)."""
        if not data:
            self._eof = True
        self._buf += data

    @property
    def eof(self) -> bool:
        return self._eof

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def trailing_data(self) -> bytes:
        return bytes(self._buf)

    def discard_trailing_data(self) -> bytes:
        data = bytes(self._buf)
        self._buf.clear()
        self._scan_from = 0
        return data

    @property
    def in_reply(self) -> bool:
        """True once part of a reply has arrived (a partial greeting, say)."""
        return self._code is not None or bool(self._buf)

    def next_reply(self) -> Reply | _NeedData:
        limits = self._limits
        while True:
            nl = self._buf.find(b"\n", self._scan_from)
            if nl < 0:
                self._scan_from = len(self._buf)
                if len(self._buf) > limits.max_line:
                    raise ReplyLimitError(
                        f"reply line longer than {limits.max_line} bytes without a newline"
                    )
                if self._buf and not _could_be_reply_start(bytes(self._buf[:4])):
                    raise SMTPProtocolError(_describe_non_smtp(bytes(self._buf)))
                if self._eof:
                    raise PeerClosed(self.in_reply)
                return NEED_DATA
            raw = bytes(self._buf[: nl + 1])
            del self._buf[: nl + 1]
            self._scan_from = 0
            if len(raw) > limits.max_line:
                raise ReplyLimitError(f"reply line longer than {limits.max_line} bytes")
            self._reply_bytes += len(raw)
            if self._reply_bytes > limits.max_bytes:
                raise ReplyLimitError(f"reply larger than {limits.max_bytes} bytes")
            line = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
            m = _LINE_RE.match(line)
            if m is None or (m.group(2) == b"" and m.group(3) != b""):
                raise SMTPProtocolError(_describe_non_smtp(line))
            code, sep, text = m.group(1), m.group(2), m.group(3)
            if self._code is None:
                self._code = code
            elif code != self._code:
                raise SMTPProtocolError(
                    f"reply lines disagree on the code ({self._code.decode()} then {code.decode()})"
                )
            self._lines.append(decode_text(text))
            if len(self._lines) > limits.max_lines:
                raise ReplyLimitError(f"reply with more than {limits.max_lines} lines")
            if sep != b"-":
                reply = Reply(
                    code=int(code),
                    lines=tuple(self._lines),
                    enhanced=_enhanced_code(int(code), self._lines[0]),
                )
                self._code = None
                self._lines = []
                self._reply_bytes = 0
                return reply


def _could_be_reply_start(head: bytes) -> bool:
    """Can these first bytes still grow into a reply line? (Fail fast on HTTP, SSH, TLS.)"""
    pattern = (b"2345", b"012345", b"0123456789", b" -\r\n")
    return all(ch in allowed for ch, allowed in zip(head, pattern, strict=False))


def _describe_non_smtp(line: bytes) -> str:
    head = line[:40]
    if head.startswith(b"\x15\x03") or head.startswith(b"\x16\x03"):
        what = "a TLS record"
    elif head.startswith(b"HTTP/"):
        what = "an HTTP response"
    elif head.startswith(b"SSH-"):
        what = "an SSH banner"
    else:
        what = "text that is not an SMTP reply"
    return f"peer sent {what}: {decode_text(head)!r}"


def _enhanced_code(code: int, first_line: str) -> str | None:
    m = _ENHANCED_RE.match(first_line)
    if m is None or m.group(1) != str(code)[0]:
        return None
    return f"{m.group(1)}.{m.group(2)}.{m.group(3)}"


# --- EHLO ---------------------------------------------------------------------------------

# Cisco PIX/ASA "ESMTP inspection" overwrites the STARTTLS keyword with X's of the same
# length (``XXXXXXXA``), so clients cannot upgrade and the box can read the mail.
_STRIPPED_STARTTLS_RE: Final = re.compile(r"^X{4,}A?$", re.IGNORECASE)


def ehlo_keywords(reply: Reply) -> tuple[str, ...]:
    """The capability lines of an EHLO reply: every line after the first (RFC 5321 §4.1.1.1)."""
    return tuple(line.strip() for line in reply.lines[1:] if line.strip())


def has_keyword(lines: tuple[str, ...] | None, keyword: str) -> bool:
    """Exact keyword match (first word, case-insensitive): no substring sniffing."""
    if not lines:
        return False
    keyword = keyword.upper()
    return any(line.split(maxsplit=1)[0].upper() == keyword for line in lines if line.split())


def is_stripped_starttls(lines: tuple[str, ...] | None) -> bool:
    """A keyword overwritten the way ASA inspection rewrites STARTTLS."""
    if not lines:
        return False
    return any(
        bool(_STRIPPED_STARTTLS_RE.match(line.split(maxsplit=1)[0]))
        for line in lines
        if line.split()
    )


# --- what we send ----------------------------------------------------------------------------

#: The only commands portprobe ever sends (RFC 5321 §4.1.1.1 EHLO/HELO, RFC 3207 STARTTLS,
#: §4.1.1.10 QUIT): no MAIL, RCPT, DATA, AUTH or VRFY can be encoded at all.
Command = Literal["EHLO", "HELO", "STARTTLS", "QUIT"]
# EHLO and HELO take a domain or address literal; STARTTLS and QUIT take nothing.
_TAKES_ARGUMENT: Final = {"EHLO": True, "HELO": True, "STARTTLS": False, "QUIT": False}


class CommandError(ValueError):
    """A command portprobe must not send (unknown verb, or an argument that could smuggle)."""


def encode_command(verb: str, argument: str | None = None) -> bytes:
    """The bytes of one command line, CRLF included (RFC 5321 §2.3.8, §4.1.1).

    Pure, like h11's writers: refuses any verb but the four, an argument where none
    belongs (or none where one is needed), and any argument that is not a domain or an
    address literal, which excludes CR, LF, NUL and non-ASCII by construction.
    """
    if verb not in _TAKES_ARGUMENT:
        raise CommandError(f"portprobe never sends {verb!r}")
    if _TAKES_ARGUMENT[verb] != (argument is not None):
        wanted = "needs an argument" if _TAKES_ARGUMENT[verb] else "takes no argument"
        raise CommandError(f"{verb} {wanted}")
    if argument is None:
        return verb.encode("ascii") + b"\r\n"
    if (problem := ehlo_name_problem(argument)) is not None:
        raise CommandError(f"refusing to send {verb} with argument {argument!r}: it {problem}")
    return f"{verb} {argument}".encode("ascii") + b"\r\n"


# RFC 5321 §4.1.2: Domain = sub-domain *("." sub-domain), Let-dig [Ldh-str], 63 per label.
_LABEL_RE: Final = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def ehlo_name_problem(name: str) -> str | None:
    """Why ``name`` cannot follow EHLO/HELO (RFC 5321 §4.1.1.1, §4.1.3), or None.

    Only a domain or an address literal goes on the wire: anything else (a CR LF that
    would smuggle a second command, a non-ASCII name without SMTPUTF8) is refused.
    """
    if not name or len(name) > 255:
        return "must be 1-255 characters"
    if not name.isascii() or not name.isprintable():
        return "must be ASCII without control characters (use the IDNA form, xn--...)"
    if name.startswith("[") and name.endswith("]"):
        import ipaddress

        inner = name[1:-1]
        try:
            if inner[:5].upper() == "IPV6:":
                ipaddress.IPv6Address(inner[5:])
            else:
                ipaddress.IPv4Address(inner)
        except ValueError:
            return "is not an address literal like [192.0.2.1] or [IPv6:2001:db8::1]"
        return None
    labels = name.rstrip(".").split(".")
    if not all(_LABEL_RE.match(label) for label in labels):
        return "is not a domain name (letters, digits, hyphens and dots)"
    return None


# --- greeting -----------------------------------------------------------------------------

_MASK_CHARS: Final = frozenset("*Xx0 \t")


def is_masked_greeting(reply: Reply) -> bool:
    """A greeting whose text is blanked out (``220 ****************``), as PIX/ASA do.

    Genuine greetings name the server (RFC 5321 §4.3.1: "220 <domain> ..."); an
    inspection engine hides that name behind asterisks, keeping the length.
    """
    text = reply.lines[0] if reply.lines else ""
    stars = text.count("*")
    return stars >= 4 and all(ch in _MASK_CHARS for ch in text)


def greeting_domain(reply: Reply) -> str | None:
    """The domain a greeting names first (RFC 5321 §4.3.1), lower-cased, or None."""
    if not reply.lines or not reply.lines[0].strip():
        return None
    first = reply.lines[0].split(maxsplit=1)[0].strip().lower().rstrip(".")
    if "*" in first or not any(ch.isalnum() for ch in first):
        return None
    return first
