"""ProbeResult's one path to JSON: every observation reaches ``to_dict()``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema

from portprobe.model import ProbeResult, Reply, Timings
from tests.servers import spec

#: Fields that reach the JSON under another shape, by name, with the reason.
EXCLUDED = {
    "spec": "flattened into target, provider, host, address, family, port, ...",
    "timings": "as timings_ms",
}
SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "reports" / "report.schema.json").read_text()
)


def test_every_field_is_in_the_json_or_excluded_by_name() -> None:
    keys = set(ProbeResult(spec=spec(25), state="open").to_dict())
    fields = {f.name for f in dataclasses.fields(ProbeResult)}
    missing = {name for name in fields - set(EXCLUDED) if name not in keys}
    assert not missing, f"ProbeResult fields missing from to_dict(): {missing}"
    assert "timings_ms" in keys and "target" in keys


def test_starttls_reply_reaches_the_json_and_the_schema_accepts_it() -> None:
    refused = ProbeResult(
        spec=spec(25, role=587),
        state="open",
        greeting=Reply(220, ("mx.test.example ESMTP",)),
        starttls="offered",
        starttls_reply=Reply(454, ("4.7.0 TLS not available",), "4.7.0"),
        anomalies=("starttls-refused",),
        timings=Timings(connect=1.0, total=2.0),
        syn_attempts=1,
    )
    d = refused.to_dict()
    d["greeting"]["domain"] = "mx.test.example"  # added by the report layer
    assert d["starttls_reply"] == {
        "code": 454,
        "text": "4.7.0 TLS not available",
        "enhanced": "4.7.0",
    }
    assert ProbeResult(spec=spec(25), state="filtered").to_dict()["starttls_reply"] is None
    probe_schema = dict(SCHEMA["$defs"]["probe"])
    # The report adds "genuine" (and the greeting's domain); a bare ProbeResult has neither.
    probe_schema["required"] = [k for k in probe_schema["required"] if k != "genuine"]
    validator = jsonschema.Draft202012Validator({**probe_schema, "$defs": SCHEMA["$defs"]})
    validator.validate(d)
    for key in ("starttls_reply", "syn_attempts", "decided_early", "quit_sent"):
        assert key in SCHEMA["$defs"]["probe"]["properties"], key
