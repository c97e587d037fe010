"""One DNS answer as the readiness checks read it (pure): the seam's return type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

#: How a query ended. ``nxdomain``/``nodata`` are answers ("no such record"); the other
#: failures are RFC 7001's temporary errors.
QueryOutcome = Literal["ok", "nxdomain", "nodata", "servfail", "timeout", "error"]
FAILED: Final[frozenset[QueryOutcome]] = frozenset({"servfail", "timeout", "error"})


@dataclass(frozen=True)
class DnsAnswer:
    """``values``: addresses (A/AAAA), names without the final dot (PTR), or the strings
    of each TXT record joined (TXT); already bounded in count and length by the seam."""

    outcome: QueryOutcome
    values: tuple[str, ...] = ()
    message: str | None = None
    truncated: bool = False  # the seam dropped values beyond its bound

    @property
    def answers(self) -> tuple[str, ...]:
        return self.values
