"""What portprobe probes, and how names become addresses.

- ``catalog``: the built-in list of public mail providers (``catalog.toml``, data not
  code) and user catalogs in the same format; no dnspython, so ``portprobe targets`` is
  quick (its presentation is :mod:`portprobe.render.catalog`).
- ``resolve``: user input (``--domain``, ``--target``, ``--nameserver``) checked, then MX
  and A/AAAA lookups turned into a :class:`portprobe.model.Plan` whose DNS evidence the
  verdict reads.
- ``planner``: jobs plus DNS answers become the plan, streaming (a lookup starts the
  moment an answer shows it is needed); the pure ``assemble`` fixes the plan's order.
- ``answers``: the DNS seam (``Resolver``) and what a lookup returns (``Lookup``).
- ``lookup``: dnspython's async resolver under trio; every lookup ends as a
  :class:`portprobe.model.DNSQuery`, never as an exception.
- ``names``: host-name and IP-literal checks shared by both.
"""
