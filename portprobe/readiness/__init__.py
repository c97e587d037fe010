"""Mail readiness: will receivers accept mail from this machine's public address?

``model`` holds the pure result types the report and the renderers read. The pure
checks: ``settings`` (whoami methods and DNSBL zones from the catalog TOML, option
parsing), ``names`` (generic PTR names, EHLO echoes), ``dnsbl`` (RFC 5782 names, answers
decoded from each list's table), ``assess`` (iprev words, ``ready``, reasons), ``advise``
(the next steps, read with the port-25 verdict).
``check`` is the only module with I/O (dnspython under trio); it is imported only when a
run uses readiness.
"""
