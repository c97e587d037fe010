"""The local MTA's evidence joined with the run's: findings, and the exact line to change.

Each advice is the command or configuration line for the MTA found (Postfix ``postconf
-e``; Exim's Debian ``update-exim4.conf.conf`` or the router/transport lines), never
applied by portprobe. An MTA step replaces the generic step it makes redundant by code
(``Advice.replaces``), never by its text.

Pure: no trio, socket, ssl, dns or typer.
"""

from __future__ import annotations

from dataclasses import replace

from portprobe.advice import Advice
from portprobe.mta.model import MtaView
from portprobe.outcome import Verdict
from portprobe.readiness.model import Readiness
from portprobe.vocab import FAMILY_NAME

RELAY = "smtp.example.net"  # the placeholder the user replaces with their provider's relay
#: How many queue destinations the findings name one by one.
NAMED_DESTINATIONS = 5


def _short(text: str | None, limit: int = 100) -> str:
    if not text:
        return "no error recorded"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def findings(view: MtaView, verdict: Verdict) -> tuple[str, ...]:
    out: list[str] = []
    queue, log = view.queue, view.log
    if queue.readable:
        out.append(f"{queue.deferred} of {queue.total} queued messages are deferred.")
        for dest in queue.destinations[:NAMED_DESTINATIONS]:
            out.append(f"{dest.count} to {dest.domain}: {dest.reason} ({_short(dest.last_error)}).")
    if log.deferrals:
        by: dict[tuple[str, str | None], int] = {}
        for deferral in log.deferrals:
            key = (deferral.reason, deferral.family)
            by[key] = by.get(key, 0) + 1
        parts = [
            f"{count} {reason}" + (f" over {FAMILY_NAME[family]}" if family else "")
            for (reason, family), count in sorted(by.items(), key=lambda kv: -kv[1])
        ]
        out.append(
            f"The log ({log.path}) shows {len(log.deferrals)} recent failed deliveries: "
            + ", ".join(parts)
            + "."
        )
    timeouts = view.deferred_by_reason().get("path-timeout", 0)
    if timeouts and verdict.port25 == "blocked":
        out.append(
            "Deliveries time out and this run finds port 25 blocked: the network, not the "
            "receivers, is why your mail waits."
        )
    return tuple(out)


def _no_ipv6_ptr(readiness: Readiness | None) -> bool | None:
    """Readiness says the IPv6 address has no working PTR (True), has one (False), or
    did not check (None)."""
    if readiness is None:
        return None
    v6 = [p for p in readiness.ptr if ":" in p.address]
    if not v6:
        return None
    return any(p.iprev in ("fail", "permerror") for p in v6)


def _ptr_name(readiness: Readiness | None) -> str | None:
    if readiness is None:
        return None
    for check in readiness.ptr:
        if check.iprev == "pass" and check.confirmed_name:
            return check.confirmed_name.rstrip(".")
    return None


def _helo_name(view: MtaView) -> str | None:
    settings = view.settings
    if view.kind == "postfix":
        name = settings.get("smtp_helo_name", "")
        if name in ("", "$myhostname", "${myhostname}"):
            name = settings.get("myhostname", "")
        return name or None
    name = settings.get("helo_data", "")
    if not name or "$" in name:  # Exim's default is $primary_hostname
        name = settings.get("primary_hostname", "")
    return name or None


def _debian_exim(view: MtaView) -> bool:
    return "dc_eximconfig_configtype" in view.settings


def _ipv4_only(view: MtaView, readiness: Readiness | None) -> Advice | None:
    no_ptr_v6 = [d for d in view.log.deferrals if d.reason == "no-ptr" and d.family == "ipv6"]
    queued = [q for q in view.queue.destinations if q.reason == "no-ptr"]
    if not no_ptr_v6 and not queued:
        return None
    missing = _no_ipv6_ptr(readiness)
    if missing is False:
        return None  # the PTR is there now; the log is older than the fix
    why = (
        "Receivers (Gmail's 550-5.7.25) refuse your IPv6 mail at end of DATA because your "
        "IPv6 address has no PTR" + (" (this run confirms it)" if missing else "") + ": "
    )
    if view.kind == "postfix":
        line = "postconf -e 'smtp_address_preference = ipv4' && postfix reload"
    elif _debian_exim(view):
        line = (
            "add disable_ipv6='true' to /etc/exim4/update-exim4.conf.conf, then "
            "update-exim4.conf && systemctl restart exim4"
        )
    else:
        line = "set dns_ipv4_lookup = * in the main section of the Exim configuration"
    replaces: tuple[str, ...] = ()
    if readiness is not None and all(
        ":" in p.address for p in readiness.ptr if p.iprev in ("fail", "permerror")
    ):
        replaces = ("ptr-missing",)
    return Advice(
        "mta-ipv4-only",
        why + line + " (or give the IPv6 address a PTR whose name resolves back to it).",
        family="ipv6",
        replaces=replaces,  # type: ignore[arg-type]
    )


def relay_port(reachable: frozenset[int]) -> int:
    """The submission port a relay should be reached on: the first that greeted here."""
    return next((port for port in (587, 2525, 465) if port in reachable), 587)


def _relayhost(view: MtaView, verdict: Verdict, reachable: frozenset[int]) -> Advice | None:
    if verdict.port25 != "blocked":
        return None
    if not view.deferred_by_reason().get("path-timeout") and not view.deferred_by_reason().get(
        "path-refused"
    ):
        return None
    port = relay_port(reachable)
    if view.kind == "postfix":
        if view.settings.get("relayhost"):
            return None  # already relaying: the relay's own path is the question
        wrapper = "'smtp_tls_wrappermode = yes' " if port == 465 else ""
        text = (
            "Port 25 is blocked and your Postfix waits on it: relay through your provider's "
            f"submission server instead: postconf -e 'relayhost = [{RELAY}]:{port}' "
            "'smtp_sasl_auth_enable = yes' "
            "'smtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd' "
            f"'smtp_sasl_security_options = noanonymous' {wrapper}"
            "'smtp_tls_security_level = encrypt'; "
            f"put '[{RELAY}]:{port} USER:PASSWORD' in /etc/postfix/sasl_passwd, then "
            "postmap /etc/postfix/sasl_passwd && postfix reload."
        )
    elif _debian_exim(view):
        if view.settings.get("dc_smarthost"):
            return None
        text = (
            "Port 25 is blocked and your Exim waits on it: relay through your provider's "
            "submission server: in /etc/exim4/update-exim4.conf.conf set "
            f"dc_eximconfig_configtype='smarthost' and dc_smarthost='{RELAY}::{port}', put "
            f"'{RELAY}:USER:PASSWORD' in /etc/exim4/passwd.client, then "
            "update-exim4.conf && systemctl restart exim4."
        )
    else:
        if view.settings.get("smarthost_route"):
            return None
        text = (
            "Port 25 is blocked and your Exim waits on it: add a router before dnslookup: "
            "smarthost: driver = manualroute, domains = ! +local_domains, "
            f"transport = remote_smtp_smarthost, route_list = * {RELAY}::{port}; and a transport "
            "remote_smtp_smarthost: driver = smtp, hosts_require_auth = *, "
            "hosts_require_tls = * (with an authenticator for your USER:PASSWORD)."
        )
    return Advice(
        "mta-relayhost",
        text,
        ports=(port,),
        # the concrete relay lines instead of the generic relay steps; the verdict keeps
        # its 2525 alternative, so a blocked verdict always has a step of its own
        replaces=("use-submission", "relay-smarthost"),
    )


def _helo(view: MtaView, readiness: Readiness | None) -> Advice | None:
    ptr, helo = _ptr_name(readiness), _helo_name(view)
    if ptr is None or helo is None or helo.lower().rstrip(".") == ptr.lower():
        return None
    if view.kind == "postfix":
        line = f"postconf -e 'smtp_helo_name = {ptr}' && postfix reload"
    elif _debian_exim(view):
        line = (
            f"add REMOTE_SMTP_HELO_DATA = {ptr} to /etc/exim4/exim4.conf.localmacros, then "
            "update-exim4.conf && systemctl restart exim4"
        )
    else:
        line = f"set helo_data = {ptr} on the remote_smtp transport"
    return Advice(
        "mta-helo-name",
        f"Your mail server says HELO {helo} but your address's PTR names {ptr}; "
        f"receivers compare them: {line}.",
    )


def _inet_protocols(view: MtaView, verdict: Verdict) -> Advice | None:
    if verdict.families.get("ipv6") != "unavailable":
        return None
    if view.kind == "postfix":
        if view.settings.get("inet_protocols", "all") not in ("all", "ipv6", "ipv4, ipv6"):
            return None
        line = "postconf -e 'inet_protocols = ipv4' && postfix stop && postfix start"
    else:
        if view.settings.get("disable_ipv6") == "true":
            return None
        line = (
            "add disable_ipv6='true' to /etc/exim4/update-exim4.conf.conf, then "
            "update-exim4.conf && systemctl restart exim4"
            if _debian_exim(view)
            else "set disable_ipv6 = true in the main section of the Exim configuration"
        )
    return Advice(
        "mta-inet-protocols",
        f"This machine has no IPv6 path, but your mail server tries IPv6 too: {line}.",
        family="ipv6",
    )


def assess(
    view: MtaView,
    verdict: Verdict,
    readiness: Readiness | None,
    reachable: frozenset[int] = frozenset(),
) -> MtaView:
    """The view with its findings and its advice, read together with this run
    (``reachable``: the submission ports that greeted genuinely here)."""
    advice = [
        a
        for a in (
            _relayhost(view, verdict, reachable),
            _ipv4_only(view, readiness),
            _inet_protocols(view, verdict),
            _helo(view, readiness),
        )
        if a is not None
    ]
    return replace(view, findings=findings(view, verdict), advice=tuple(advice))
