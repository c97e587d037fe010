"""What portprobe probes, and how names become addresses.

- ``catalog``: the built-in list of public mail providers (``catalog.toml``, data not
  code) and user catalogs in the same format; no dnspython, so ``portprobe targets`` is
  quick.
- ``resolve``: user input (``--domain``, ``--target``, ``--nameserver``) checked, then MX
  and A/AAAA lookups turned into a :class:`portprobe.model.Plan` whose DNS evidence the
  verdict reads.
- ``lookup``: dnspython's async resolver under trio; every lookup ends as a
  :class:`portprobe.model.DNSQuery`, never as an exception.
- ``names``: host-name and IP-literal checks shared by both.
"""
