"""Where port 25 is stopped (spec "Path"): the TTL ladder's model, the blocker rules, AS data.

``model`` and ``locate`` are pure (no trio, socket or dns); ``asn`` parses Team Cymru's
answers (pure) and asks for them through the run's DNS client; ``companion`` runs the
trace (``portprobe.probe.trace``) beside a diagnosis and adds ``path`` to its report.
"""
