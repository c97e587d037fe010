"""What portprobe probes, and how names become addresses.

- ``catalog``: the built-in list of public mail providers (``catalog.toml``, data not
  code) and user catalogs in the same format; no dnspython, so ``portprobe targets`` is
  quick (its presentation is :mod:`portprobe.render.catalog`).
- ``resolve``: a :class:`~portprobe.targets.resolve.PlanInput` checked, then MX and A/AAAA
  lookups turned into a :class:`portprobe.model.Plan` whose DNS evidence the verdict reads.
- ``planner``: jobs plus DNS answers become the plan, streaming (a lookup starts the
  moment an answer shows it is needed); the pure ``assemble`` fixes the plan's order.
- ``answers``: what the planner reads from a DNS answer (``Lookup``). The DNS itself is
  asked through the one seam, :class:`portprobe.model.DnsLookup`
  (:class:`portprobe.probe.dnsclient.DnsClient` by default).
- ``names``: ``--target``, ``--domain`` and ``--nameserver`` parsed; host-name and
  IP-literal checks shared with the catalog.
"""
