"""The byte-moving half of an SMTP client: reads replies from a trio stream, sends commands.

What may be sent is decided by the pure ``encode_command`` (only EHLO, HELO, STARTTLS and
QUIT exist there), so no code path can send MAIL, RCPT, DATA, AUTH or VRFY; what a reply
is, and what a close in the middle of one means, by the pure ``ReplyReader``.
"""

from __future__ import annotations

import trio

from portprobe.model import Reply
from portprobe.protocol.smtp import (
    DEFAULT_LIMITS,
    NEED_DATA,
    Command,
    PeerClosed,
    ReplyLimits,
    ReplyReader,
    encode_command,
)

__all__ = ["Command", "PeerClosed", "SMTPSession"]

_RECEIVE_CHUNK = 4096


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
            self.reader.feed(await self.stream.receive_some(_RECEIVE_CHUNK))

    async def send(self, verb: Command, argument: str | None = None) -> None:
        await self.stream.send_all(encode_command(verb, argument))

    async def command(self, verb: Command, argument: str | None = None) -> Reply:
        await self.send(verb, argument)
        return await self.read_reply()

    def switch_stream(self, stream: trio.abc.Stream) -> bytes:
        """Continue over ``stream`` (after a TLS upgrade); returns the discarded bytes.

        RFC 3207 §4.2: anything the server sent after its ``220`` to STARTTLS and before
        the handshake is not protected and must be thrown away.
        """
        self.stream = stream
        return self.reader.discard_trailing_data()
