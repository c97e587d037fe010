"""The lab: an ISP in network namespaces, with real Postfix, real DNS, real firewall rules.

Three namespaces made per run — a client (where portprobe runs), a router (the ISP:
forwarding, iptables/ip6tables rules, its own relay and an ASA-style masking proxy) and an
"internet" (provider addresses on ``lo``, Postfix, dnsmasq). Scenarios swap the router's
rules. See ``README.md`` in this folder; the library entry point is :class:`netlab.Lab`.
"""
