"""``portprobe serve``: the exporter's options in, :func:`portprobe.serve.command.serve_main`.

Without ``--config`` the one module, ``default``, is the diagnosis the main command would
run with the same options, so the diagnosis options here are the main command's own (the
same Annotated types, the same parsing, the same checks). Only this function imports the
server stack, and only when it runs: ``portprobe --help`` pays nothing for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from portprobe import defaults
from portprobe.cli.diagnose import build_request, check_families_reach_targets
from portprobe.cli.options import (
    MAIL_PORTS_TEXT,
    CaFileOption,
    CatalogOption,
    ConnectTimeoutOption,
    DnsTimeoutOption,
    DomainOption,
    EhloNameOption,
    Ipv4Option,
    Ipv6Option,
    MaxAddressesOption,
    MaxMxOption,
    NameserverOption,
    NoReadinessOption,
    PerHostOption,
    PortMapOption,
    PortsOption,
    PublicIpOption,
    TargetOption,
    TimeoutOption,
)

ListenOption = Annotated[
    str,
    typer.Option(
        metavar="HOST:PORT",
        help="Address to listen on (an IP literal; [::1]:9925 for IPv6; port 0 picks one).",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(metavar="FILE", help="The modules file (TOML; see contrib/prometheus)."),
]
CacheTtlOption = Annotated[
    str, typer.Option(metavar="DURATION", help="How long a finished result answers scrapes.")
]
ReadinessTtlOption = Annotated[
    str,
    typer.Option(metavar="DURATION", help="How long a mail-readiness answer is kept."),
]
MaxConcurrentOption = Annotated[
    int, typer.Option(metavar="N", min=1, help="Diagnoses at once; more scrapes get 503.")
]
MaxConnectionsOption = Annotated[
    int, typer.Option(metavar="N", min=1, help="HTTP connections at once.")
]
TimeoutOffsetOption = Annotated[
    float,
    typer.Option(metavar="SECS", min=0, help="Taken off Prometheus' scrape timeout."),
]


def serve(
    listen: ListenOption = "127.0.0.1:9925",
    config: ConfigOption = None,
    cache_ttl: CacheTtlOption = "60s",
    readiness_ttl: ReadinessTtlOption = "10m",
    max_concurrent: MaxConcurrentOption = 8,
    max_connections: MaxConnectionsOption = 256,
    timeout_offset: TimeoutOffsetOption = 0.5,
    domain: DomainOption = None,
    target: TargetOption = None,
    ports: PortsOption = MAIL_PORTS_TEXT,
    nameserver: NameserverOption = None,
    ca_file: CaFileOption = None,
    catalog: CatalogOption = None,
    ipv4: Ipv4Option = False,
    ipv6: Ipv6Option = False,
    timeout: TimeoutOption = defaults.TIMEOUT,
    connect_timeout: ConnectTimeoutOption = defaults.CONNECT_TIMEOUT,
    dns_timeout: DnsTimeoutOption = defaults.DNS_TIMEOUT,
    per_host: PerHostOption = defaults.PER_HOST,
    ehlo_name: EhloNameOption = None,
    port_map: PortMapOption = None,
    max_mx: MaxMxOption = defaults.MAX_MX,
    max_addresses: MaxAddressesOption = defaults.MAX_ADDRESSES,
    no_readiness: NoReadinessOption = False,
    public_ip: PublicIpOption = None,
) -> None:
    """Run as a Prometheus exporter: GET /probe?module=NAME[&target=DOMAIN] runs a diagnosis.

    Also /metrics (the exporter's own), /-/healthy and /-/ready. Listens on loopback by
    default; SIGTERM ends the runs in flight cleanly.

    Examples:

      portprobe serve

      portprobe serve --config /etc/portprobe/serve.toml --listen 127.0.0.1:9925

      curl 'http://127.0.0.1:9925/probe?module=default'
    """
    import sys

    from portprobe.serve.command import ServeOptions, serve_main

    request = build_request(
        domain=domain, target=target, ports=ports, nameserver=nameserver, ca_file=ca_file,
        catalog=catalog, ipv4=ipv4, ipv6=ipv6, timeout=timeout,
        connect_timeout=connect_timeout, dns_timeout=dns_timeout, per_host=per_host,
        ehlo_name=ehlo_name, port_map=port_map, max_mx=max_mx, max_addresses=max_addresses,
        no_readiness=no_readiness, public_ip=public_ip,
    )  # fmt: skip
    check_families_reach_targets(request)
    options = ServeOptions(
        listen=listen,
        config=config,
        request=request,
        cache_ttl=cache_ttl,
        readiness_ttl=readiness_ttl,
        max_concurrent=max_concurrent,
        max_connections=max_connections,
        timeout_offset=timeout_offset,
        per_host=per_host,
    )

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    raise typer.Exit(serve_main(options, say=say))
