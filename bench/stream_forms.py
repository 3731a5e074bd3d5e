"""Events of the stream benchmark in both shapes: whole application forms and version-1 events.

Whole forms are what producers send since contract version 2 (every application column of the row,
empty cells null: :mod:`devtools.application_sources`); version-1 events carry the 8 fields of
:data:`schemas.events.V1_FIELDS`. Both from the same rows, for the same clients.
"""

from __future__ import annotations

from pathlib import Path

import orjson

Payloads = list[tuple[bytes | None, bytes]]


def form_payloads(raw_dir: Path, n: int, form: str) -> Payloads | None:
    """``n`` events from the raw application_test rows, cycled: whole forms (``full``: every column,
    empty cells null, as the producer sends) or their version-1 fields (``8``); None without the file.
    With an event id, as the producer sends (else the worker hashes the payload for one); no event
    time (the record's is used)."""
    from devtools.application_sources import read_csv_applications
    from schemas.events import V1_FIELDS

    path = raw_dir / "application_test.csv.gz"
    if not path.is_file():
        return None
    rows = read_csv_applications(path, limit=min(n, 48_744))
    out: Payloads = []
    for i in range(n):
        row = rows[i % len(rows)]
        fields = row.fields if form == "full" else {k: v for k, v in row.fields.items() if k in V1_FIELDS}
        envelope = {"event_id": f"e-b-{i}", "application_id": f"b-{i}", "sk_id_curr": row.sk_id_curr}
        doc = {**envelope, "schema_version": 2 if form == "full" else 1, **fields}
        out.append((f"b-{i}".encode(), orjson.dumps(doc)))
    return out


def legacy_fields(payloads: Payloads) -> Payloads:
    """The same events restricted to the 8 fields of version 1 (fallback without the raw files)."""
    from schemas.events import V1_FIELDS

    keep = {"event_id", "application_id", "sk_id_curr", "event_time", *V1_FIELDS}
    return [(k, orjson.dumps({n: v for n, v in orjson.loads(p).items() if n in keep})) for k, p in payloads]
