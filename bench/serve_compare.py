"""``portprobe serve`` /probe beside Prometheus' blackbox_exporter, one loopback SMTP host.

The host is bench/responder.py (one host, 127.20.0.1, STARTTLS with a throw-away CA
whose leaf also names the address, so both tools verify the certificate). The two
exporters are asked the same question the same way, over HTTP:

- blackbox_exporter (Debian ``prometheus-blackbox-exporter``), a ``tcp`` module that
  reads the greeting, sends EHLO, STARTTLS, verifies TLS, EHLO again and QUIT;
- portprobe serve, a one-host module (``targets = ["127.20.0.1"]``, port 25 only,
  IPv4, no readiness): greeting, EHLO, STARTTLS, verified TLS, and the verdict.

Measured, each on this machine:

1. uncached latency: sequential scrapes, every one a full probe (portprobe
   ``--cache-ttl 0``); median and p99 at the client, and the exporter process' CPU time
   per scrape (utime + stime from /proc/PID/stat);
2. cached latency (portprobe ``--cache-ttl 1h``): p50/p99 of sequential scrapes;
3. scrape throughput: ``--workers`` clients with keep-alive for ``--seconds`` each.
   Uncached portprobe scrapes of one module that overlap share one run (single flight),
   so its "diagnoses/s" is given beside its scrapes/s.

The client is Python (http.client) in the same machine: its own cost is in every latency
and bounds the throughput; both exporters pay it alike. Loopback only.

    uv run python bench/serve_compare.py [--scrapes 300] [--workers 8] [--seconds 5] [--write]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, provenance, update_readme

HOST = "127.20.0.1"
NAME = "mx0.bench.test"
BLACKBOX = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_certs(directory: Path) -> None:
    """A CA, and a leaf for the responder's names *and* its address (both tools verify)."""
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("*.bench.test", HOST)
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(directory / "leaf.pem"))


def wait_port(host: str, port: int, limit: float = 15.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {host}:{port} after {limit} s")


@contextmanager
def process(
    argv: list[str], port: int, host: str = "127.0.0.1", stdin: int | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(host, port)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path, headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"})
    answer = conn.getresponse()
    body = answer.read()
    if answer.status != 200:
        raise SystemExit(f"{path}: HTTP {answer.status}: {body[:200]!r}")
    return body


def sequential(port: int, path: str, count: int, check: Callable[[bytes], bool]) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        body = scrape(conn, path)
        times.append(time.perf_counter() - start)
        if not check(body):
            raise SystemExit(f"{path}: the probe did not succeed: {body[-400:]!r}")
    conn.close()
    return times


def throughput(port: int, path: str, workers: int, seconds: float) -> float:
    done = [0] * workers
    stop = time.monotonic() + seconds

    def work(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            scrape(conn, path)
            done[i] += 1
        conn.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - start)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ms(value: float) -> str:
    return f"{value * 1000:.1f}"


def blackbox_config(directory: Path) -> Path:
    path = directory / "blackbox.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            modules:
              smtp_starttls:
                prober: tcp
                timeout: 5s
                tcp:
                  preferred_ip_protocol: ip4
                  query_response:
                    - expect: "^220 "
                    - send: "EHLO prober\\r"
                    - expect: "^250 STARTTLS"
                    - send: "STARTTLS\\r"
                    - expect: "^220 "
                    - starttls: true
                    - send: "EHLO prober\\r"
                    - expect: "^250 "
                    - send: "QUIT\\r"
                  tls_config:
                    ca_file: {directory / "ca.pem"}
            """
        )
    )
    return path


def portprobe_config(directory: Path, smtp_port: int) -> Path:
    path = directory / "serve.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            [modules.smtp]
            targets = ["{HOST}"]
            ports = [25]
            families = ["ipv4"]
            port_map = {{ "25" = {smtp_port} }}
            ca_file = "{directory / "ca.pem"}"
            readiness = false
            timeout = 5
            """
        )
    )
    return path


def serve_argv(config: Path, port: int, cache_ttl: str) -> list[str]:
    code = (
        "import sys; from pathlib import Path; "
        "from portprobe.serve.command import ServeOptions, serve_main; "
        f"sys.exit(serve_main(ServeOptions(listen='127.0.0.1:{port}', "
        f"config=Path({str(config)!r}), cache_ttl={cache_ttl!r}, max_concurrent=64), "
        "say=lambda line: print(line, file=sys.stderr, flush=True)))"
    )
    return [sys.executable, "-c", code]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--cached-scrapes", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if BLACKBOX is None:
        raise SystemExit(
            "blackbox_exporter is not installed (Debian: prometheus-blackbox-exporter)"
        )
    bench = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write_certs(directory)
        smtp = free_port()
        responder = [
            sys.executable, str(bench / "responder.py"), "--hosts", "1", "--base-port",
            str(smtp), "--delay", "0", "--tls-dir", str(directory), "--lifetime", "900",
        ]  # fmt: skip
        rows = []
        with process(responder, smtp, HOST, stdin=subprocess.PIPE):
            bb_port = free_port()
            bb = [
                BLACKBOX, f"--config.file={blackbox_config(directory)}",
                f"--web.listen-address=127.0.0.1:{bb_port}",
            ]  # fmt: skip
            bb_path = f"/probe?module=smtp_starttls&target={HOST}:{smtp}"
            with process(bb, bb_port) as proc:
                sequential(bb_port, bb_path, 20, lambda b: b"probe_success 1" in b)  # warm
                cpu = cpu_seconds(proc.pid)
                times = sequential(
                    bb_port, bb_path, args.scrapes, lambda b: b"probe_success 1" in b
                )
                bb_cpu = (cpu_seconds(proc.pid) - cpu) / args.scrapes
                bb_rate = throughput(bb_port, bb_path, args.workers, args.seconds)
            bb_median = statistics.median(times)
            rows.append(
                ["blackbox_exporter (tcp, STARTTLS, verify)", ms(bb_median), ms(pct(times, 99)),
                 ms(bb_cpu), "–", "–", f"{bb_rate:.0f}", "–"]
            )  # fmt: skip

            config = portprobe_config(directory, smtp)
            ok = b"probe_success 1"
            pp_port = free_port()
            with process(serve_argv(config, pp_port, "0"), pp_port) as proc:
                sequential(pp_port, "/probe?module=smtp", 20, lambda b: ok in b)  # warm
                cpu = cpu_seconds(proc.pid)
                times = sequential(pp_port, "/probe?module=smtp", args.scrapes, lambda b: ok in b)
                pp_cpu = (cpu_seconds(proc.pid) - cpu) / args.scrapes
                runs_before = runs(pp_port)
                start = time.monotonic()
                pp_rate = throughput(pp_port, "/probe?module=smtp", args.workers, args.seconds)
                run_rate = (runs(pp_port) - runs_before) / (time.monotonic() - start)
            pp_median = statistics.median(times)
            pp_port = free_port()
            with process(serve_argv(config, pp_port, "1h"), pp_port):
                sequential(pp_port, "/probe?module=smtp", 1, lambda b: ok in b)
                cached = sequential(
                    pp_port, "/probe?module=smtp", args.cached_scrapes, lambda b: ok in b
                )
                cached_rate = throughput(pp_port, "/probe?module=smtp", args.workers, args.seconds)
            rows.append(
                ["portprobe serve (port 25, STARTTLS, verify, verdict)", ms(pp_median),
                 ms(pct(times, 99)), ms(pp_cpu), ms(pct(cached, 50)), ms(pct(cached, 99)),
                 f"{pp_rate:.0f} ({run_rate:.0f} diagnoses/s)", f"{cached_rate:.0f}"]
            )  # fmt: skip
    headers = [
        "exporter", "uncached median (ms)", "uncached p99 (ms)", "CPU per uncached scrape (ms)",
        "cached p50 (ms)", "cached p99 (ms)", f"scrapes/s uncached ({args.workers} clients)",
        "scrapes/s cached",
    ]  # fmt: skip
    table = markdown_table(headers, rows)
    ratio = (
        f"portprobe / blackbox: latency {pp_median / bb_median:.2f} ×, "
        f"CPU {pp_cpu / bb_cpu:.2f} × (issue 24 asks ≤ 1.5 × both); "
        f"cached p99 {ms(pct(cached, 99))} ms (asks ≤ 5 ms)."
    )
    print(table)
    print(ratio)
    if args.write:
        update_readme(
            "serve",
            "## `portprobe serve` beside blackbox_exporter (issue 24)\n\n"
            + (__doc__ or "").split("\n\n", 1)[1].split("    uv run")[0].strip()
            + "\n\n"
            + table
            + "\n\n"
            + ratio
            + "\n\n"
            + WHERE_THE_TIME_GOES
            + "\n\n"
            + provenance(),
        )


WHERE_THE_TIME_GOES = """\
Where portprobe's uncached time goes (measured by hand, not by this script: cProfile of
200 diagnoses of this module in one process, 11.9 ms each on the same machine): the probe
engine (connect, greeting, EHLO, STARTTLS over trio's SSLStream, verification, QUIT)
about two thirds, building the report ~1.9 ms, rendering the OpenMetrics text ~1.7 ms.
The exporter's own part (HTTP, single flight, cache) is what a cached scrape costs:
under a millisecond including the Python client. The 1.5 × target is missed on the
library's side (engine, report, renderer), not in serve."""


def runs(port: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("portprobe_serve_diagnoses_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


if __name__ == "__main__":
    main()
