"""The local mail server's own view (spec "The local mail server", ``mta`` in the report).

Shaped like ``portprobe.readiness``: ``model`` (pure data), ``parse`` (the MTAs' texts,
pure), ``read`` (I/O behind a ``run(argv)`` seam and a ``root`` seam), ``assess`` (the
evidence joined with the verdict and readiness, pure) and ``companion`` (how a diagnosis
runs it). Read-only: nothing here changes the MTA, its queue or its configuration.
"""
