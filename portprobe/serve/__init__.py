"""``portprobe serve``: a blackbox-style Prometheus exporter (spec "As a service for
Prometheus").

- :mod:`~portprobe.serve.config` — the modules file (TOML, like the catalog): each module
  a preset of :class:`~portprobe.DiagnoseRequest`, and which ``?target=`` it accepts;
- :mod:`~portprobe.serve.exporter` — the routes, single flight per (module, target), the
  result cache, scrape deadlines, the exporter's own metrics;
- :mod:`~portprobe.serve.http` — a small HTTP/1.1 server: h11 over trio, with a
  connection cap and read deadlines;
- :mod:`~portprobe.serve.command` — ``serve_main``, what the ``serve`` sub-command calls.

Nothing here is imported by ``portprobe --help`` or any other command: h11 and
prometheus_client load only when ``serve`` runs.
"""
