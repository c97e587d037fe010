"""The byte-moving half of an SMTP client: reads replies from a trio stream, sends commands.

Only the commands portprobe is allowed to send exist here (EHLO, HELO, STARTTLS, QUIT),
so no code path can send MAIL, RCPT, DATA, AUTH or VRFY.
"""

from __future__ import annotations

from typing import Literal

import trio

from portprobe.model import Reply
from portprobe.protocol.smtp import (
    DEFAULT_LIMITS,
    NEED_DATA,
    ReplyLimits,
    ReplyReader,
    ehlo_name_problem,
)

_RECEIVE_CHUNK = 4096

Command = Literal["EHLO", "HELO", "STARTTLS", "QUIT"]


class PeerClosed(Exception):
    """The peer closed the connection before a complete reply."""

    def __init__(self, partial: bool) -> None:
        super().__init__(
            "peer closed the connection in the middle of a reply"
            if partial
            else "peer closed the connection"
        )
        self.partial = partial


class SMTPSession:
    def __init__(self, stream: trio.abc.Stream, limits: ReplyLimits = DEFAULT_LIMITS) -> None:
        self.stream = stream
        self.reader = ReplyReader(limits)

    async def read_reply(self) -> Reply:
        """The next complete reply; raises SMTPProtocolError / PeerClosed / trio errors."""
        while True:
            event = self.reader.next_reply()
            if event is not NEED_DATA:
                assert isinstance(event, Reply)
                return event
            data = await self.stream.receive_some(_RECEIVE_CHUNK)
            if not data:
                raise PeerClosed(self.reader.in_reply)
            self.reader.feed(data)

    async def command(self, verb: Command, argument: str | None = None) -> Reply:
        if argument is not None and ehlo_name_problem(argument) is not None:
            # Last line of defence: nothing but a domain or literal ever follows a verb.
            raise ValueError(f"refusing to send {verb} with argument {argument!r}")
        line = verb if argument is None else f"{verb} {argument}"
        await self.stream.send_all(line.encode("ascii") + b"\r\n")
        return await self.read_reply()

    def switch_stream(self, stream: trio.abc.Stream) -> bytes:
        """Continue over ``stream`` (after a TLS upgrade); returns the discarded bytes.

        RFC 3207 §4.2: anything the server sent after its ``220`` to STARTTLS and before
        the handshake is not protected and must be thrown away.
        """
        self.stream = stream
        return self.reader.discard_trailing_data()
