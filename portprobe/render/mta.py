"""The local mail server in one line, shared by the table, Markdown, JUnit and Nagios.

"Your mail server: Postfix 3.7.11, 42 deferred (38 path-timeout to gmail.com, …)".
The domains and errors come from the MTA's queue and log (what receivers sent): the
callers escape them (``cells.safe`` / ``markdown.md``) like any server text.
"""

from __future__ import annotations

from portprobe.mta.model import MtaView
from portprobe.vocab import FAMILY_NAME

#: How many destinations the one line names before "…".
NAMED = 3


def mta_headline(view: MtaView) -> str:
    queue, log = view.queue, view.log
    parts = [f"Your mail server: {view.label}"]
    if queue.readable:
        named = [f"{d.count} {d.reason} to {d.domain}" for d in queue.destinations[:NAMED]]
        if len(queue.destinations) > NAMED:
            named.append("…")
        parts.append(f"{queue.deferred} deferred" + (f" ({', '.join(named)})" if named else ""))
    else:
        parts.append("queue not readable")
    if log.deferrals and not (queue.readable and queue.destinations):
        counts: dict[str, int] = {}
        for d in log.deferrals:
            key = d.reason + (f" over {FAMILY_NAME[d.family]}" if d.family else "")
            counts[key] = counts.get(key, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])
        parts.append("log: " + ", ".join(f"{n} {k}" for k, n in ranked[:NAMED]))
    return ", ".join(parts)
