"""Mail readiness: will receivers accept mail from this machine's public address?

``model`` holds the pure result types the report and the renderers read; the checks
themselves (whoami lookups, PTR and forward confirmation, generic names, DNSBLs) live in
the other modules of this package and are imported only when a run uses them.
"""
