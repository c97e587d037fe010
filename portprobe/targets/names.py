"""Host names, IP literals and name servers as users type them: checked before any packet.

``parse_target``, ``parse_domain`` and ``parse_nameserver`` read ``--target``,
``--domain`` and ``--nameserver``; the catalog loader uses the same host-name rules.

No dnspython here (the catalog loader uses these checks and must import cheaply). The
rules are those of a *host* name, not of any DNS owner name: RFC 1123 §2.1 letters,
digits and hyphens ("LDH"), labels of 1–63 octets, at most 253 octets in all (RFC 1035
§2.3.4 without the length octets and the root), no label starting or ending with a
hyphen. Underscores are refused: they are legal in DNS but never in a mail host's name,
so one in ``--target`` is a typo. Unicode names are turned into their ASCII (IDNA) form.
"""

from __future__ import annotations

import ipaddress
import re

from portprobe.errors import InputError as InputError
from portprobe.model import format_nameserver as format_nameserver

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_NAME_LENGTH = 253  # RFC 1035 §2.3.4: 255 octets on the wire = 253 characters of text


def ip_literal(text: str) -> str | None:
    """The canonical form of an IPv4/IPv6 literal (brackets allowed for IPv6), or None."""
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        address = ipaddress.ip_address(inner)
    except ValueError:
        return None
    if inner is not text and address.version != 6:
        return None  # "[192.0.2.1]" is no IPv6 literal; refuse rather than guess
    return str(address)


def family_of(address: str) -> str:
    """ "ipv4" or "ipv6" for a literal already checked by :func:`ip_literal`."""
    return "ipv6" if ipaddress.ip_address(address).version == 6 else "ipv4"


def check_host_name(text: str, *, what: str = "host name") -> str:
    """``text`` as a normalised host name (lower case, ASCII, no final dot).

    Raises :class:`InputError` with one line saying what is wrong.
    """
    name = text.strip()
    if not name:
        raise InputError(f"empty {what}")
    if any(ch.isspace() for ch in name):
        raise InputError(f"invalid {what} {text!r}: contains white space")
    if "://" in name or "/" in name or "@" in name:
        raise InputError(f"invalid {what} {text!r}: give a bare name, not a URL or address")
    if ":" in name:
        raise InputError(f"invalid {what} {text!r}: a port is not part of the name (use --ports)")
    if name.endswith("."):
        name = name[:-1]
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            problem = "not a valid internationalised name"
            raise InputError(f"invalid {what} {text!r}: {problem}") from None
    name = name.lower()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InputError(f"invalid {what} {text!r}: longer than {MAX_NAME_LENGTH} characters")
    labels = name.split(".")
    for label in labels:
        if not label:
            raise InputError(f"invalid {what} {text!r}: empty label")
        if not _LABEL.match(label):
            raise InputError(
                f"invalid {what} {text!r}: label {label!r} is not letters, digits and "
                "inner hyphens (at most 63)"
            )
    if labels[-1].isdigit():
        # RFC 1123 §2.1: a top-level label is never all digits, so this is a mistyped
        # IPv4 address ("192.0.2", "300.1.1.1"), not a name to send to DNS.
        raise InputError(f"invalid {what} {text!r}: neither a valid IP address nor a host name")
    return name


SYSTEM_RESOLV_CONF = "/etc/resolv.conf"


def parse_target(text: str) -> tuple[str, str | None]:
    """``--target`` text as ``(host, ip_literal_or_None)``.

    Host names come back normalised (lower case, ASCII, no final dot); IP literals in
    canonical form without brackets, as both host and literal.
    """
    raw = text.strip()
    literal = ip_literal(raw)
    if literal is not None:
        return literal, literal
    if raw.startswith("["):
        raise InputError(f"invalid target {text!r}: brackets hold an IPv6 address only")
    if raw.count(":") >= 2:
        raise InputError(f"invalid target {text!r}: not a valid IPv6 address")
    return check_host_name(raw, what="target"), None


def parse_domain(text: str) -> str:
    """``--domain`` text as a normalised mail domain; an IP literal is refused."""
    if ip_literal(text.strip()) is not None:
        raise InputError(
            f"invalid domain {text!r}: --domain takes a mail domain; use --target for an address"
        )
    return check_host_name(text, what="domain")


def _parse_port(text: str, original: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise InputError(f"invalid nameserver {original!r}: port must be 1-65535")
    return int(text)


def parse_nameserver(text: str) -> tuple[str, int]:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT``, ``[IPv6]`` or a bare IPv6 → ``(ip, port)``,
    the inverse of :func:`format_nameserver`.

    Names are refused: a resolver cannot be found through the resolver it replaces.
    """
    raw = text.strip()
    if raw.startswith("["):
        end = raw.find("]")
        literal = ip_literal(raw[: end + 1]) if end > 0 else None
        rest = raw[end + 1 :]
        if literal is None or (rest and not rest.startswith(":")):
            raise InputError(f"invalid nameserver {text!r}: expected [IPv6] or [IPv6]:PORT")
        return literal, _parse_port(rest[1:], text) if rest else 53
    literal = ip_literal(raw)
    if literal is not None:
        return literal, 53
    host, sep, port = raw.partition(":")
    literal = ip_literal(host) if sep and ":" not in port else None
    if literal is not None:
        return literal, _parse_port(port, text)
    raise InputError(
        f"invalid nameserver {text!r}: give an IP address, optionally with :PORT "
        "([IPv6]:PORT); host names are not accepted"
    )
