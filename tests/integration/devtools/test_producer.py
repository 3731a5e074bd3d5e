"""The producer on the real broker (Tansu): events, keys, pacing, malformed events, CLI errors."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from devtools.exceptions import ProducerError, ProducerInputError
from devtools.harness import KafkaTopics, collect
from devtools.producer import (
    MALFORMED_PAYLOADS,
    EventFactory,
    produce,
    read_csv_applications,
    send_at_rate,
    synthetic_applications,
)
from schemas.codec import parse_application
from schemas.exceptions import InvalidEvent

pytestmark = pytest.mark.integration

HEADER = "SK_ID_CURR,NAME_CONTRACT_TYPE,AMT_INCOME_TOTAL,AMT_CREDIT,HOUR_APPR_PROCESS_START,OTHER\n"


async def consume_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0) -> list[Any]:
    """Every record of ``topic`` (the producer has finished: read to the log end, at least ``expected``)."""
    return await collect(bootstrap, topic, expected, to_end=True, timeout_s=timeout_s)


def write_csv(path: Path, lines: list[str], gz: bool = False) -> Path:
    text = HEADER + "".join(line + "\n" for line in lines)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("gz", [False, True])
async def test_csv_rows_become_keyed_valid_events(
    tmp_path: Path, kafka_bootstrap: str, make_topics: Callable[..., KafkaTopics], gz: bool
) -> None:
    csv = write_csv(
        tmp_path / ("apps.csv.gz" if gz else "apps.csv"),
        [
            "100001,Cash loans,135000.0,568800.0,18,x",
            "100005,Revolving loans,99000,,9,y",
            "100013,,202500.0,663264.0,,z",
        ],
        gz=gz,
    )
    rows = read_csv_applications(csv)
    topics = make_topics(partitions=2)
    summary = await produce(kafka_bootstrap, topics.applications, rows, rate=0, keep_ids=True)
    assert (summary.sent, summary.failed, summary.malformed) == (3, 0, 0)

    records = await consume_all(kafka_bootstrap, topics.applications, 3)
    assert len(records) == 3
    events = {rec.key.decode(): parse_application(rec.value, 65536) for rec in records}
    assert set(events) == set(summary.application_ids)
    by_client = {e.sk_id_curr: e for e in events.values()}
    assert set(by_client) == {100001, 100005, 100013}
    assert by_client[100001].AMT_CREDIT == 568800.0 and by_client[100001].HOUR_APPR_PROCESS_START == 18
    assert by_client[100005].AMT_INCOME_TOTAL == 99000.0
    # the whole form of each row: an empty cell is carried as unknown (it overrides the cached value)
    assert by_client[100005].scoring_fields()["AMT_CREDIT"] is None
    assert by_client[100013].scoring_fields()["NAME_CONTRACT_TYPE"] is None
    assert set(by_client[100001].scoring_fields()) == {
        "NAME_CONTRACT_TYPE",
        "AMT_INCOME_TOTAL",
        "AMT_CREDIT",
        "HOUR_APPR_PROCESS_START",
    }  # the application columns of the file (OTHER is not one)
    assert all(e.schema_version == 2 for e in events.values())
    assert all(e.application_id == k for k, e in events.items())


async def test_steady_rate_limit_and_malformed(
    kafka_bootstrap: str, make_topics: Callable[..., KafkaTopics]
) -> None:
    rows = synthetic_applications(50, seed=3)
    topics = make_topics(partitions=4)
    n, rate = 400, 2000.0
    summary = await produce(
        kafka_bootstrap, topics.applications, rows, rate=rate, limit=n, repeat=True, bad_every=10
    )
    assert summary.sent == n and summary.failed == 0 and summary.malformed == n // 10
    # never faster than the requested rate: event i is not sent before t0 + i / rate
    assert summary.seconds >= (n - 1) / rate

    records = await consume_all(kafka_bootstrap, topics.applications, n)
    assert len(records) == n
    assert len({rec.key for rec in records}) == n  # unique application ids across repeats
    from aiokafka.partitioner import murmur2

    # keyed by application id: the partition is the one any Kafka client derives from the key
    assert all(rec.partition == (murmur2(rec.key) & 0x7FFFFFFF) % 4 for rec in records)
    assert len({rec.partition for rec in records}) == 4
    valid, invalid = [], []
    for rec in records:
        try:
            valid.append(parse_application(rec.value, 65536))
        except InvalidEvent as exc:
            invalid.append(exc.kind.value)
    assert len(invalid) == n // 10 and len(valid) == n - n // 10
    assert {"bad_json", "schema", "out_of_range", "non_finite"} <= set(invalid)
    times = sorted(e.event_time for e in valid)
    assert (times[-1] - times[0]).total_seconds() >= (n - 12) / rate  # event times spread by the rate


async def test_duration_stops_the_stream(
    kafka_bootstrap: str, make_topics: Callable[..., KafkaTopics]
) -> None:
    topics = make_topics(partitions=1)
    summary = await produce(
        kafka_bootstrap,
        topics.applications,
        synthetic_applications(10),
        rate=200.0,
        duration_s=0.5,
        repeat=True,
    )
    assert 0 < summary.sent <= int(0.5 * 200) + 1
    assert len(await consume_all(kafka_bootstrap, topics.applications, summary.sent)) == summary.sent


async def test_an_unthrottled_burst_larger_than_one_producer_batch_is_sent_whole(
    kafka_bootstrap: str, make_topics: Callable[..., KafkaTopics]
) -> None:
    from aiokafka import AIOKafkaProducer

    topics = make_topics(partitions=2)
    n = 600  # rate 0: one burst of every event, ~150 KB per partition for 4 KiB producer batches
    factory = EventFactory(run_id="burst")
    events = [factory.make(row) for row in synthetic_applications(n, seed=5)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=0, acks=1, max_batch_size=4096)
    await producer.start()
    try:
        summary = await send_at_rate(producer, topics.applications, events, rate=0)
    finally:
        await producer.stop()

    assert summary.sent == n and summary.failed == 0
    records = await consume_all(kafka_bootstrap, topics.applications, n)
    assert sorted(rec.key for rec in records) == sorted(key for key, _ in events)


async def test_unreachable_broker_is_a_clear_error() -> None:
    from devtools.launchers import free_port

    with pytest.raises(ProducerError, match=r"cannot connect to the broker at 127\.0\.0\.1:\d+"):
        await produce(f"127.0.0.1:{free_port()}", "t", synthetic_applications(1), rate=0)


# --- input errors: one line naming the file, row and field ----------------------------------------
@pytest.mark.parametrize(
    ("lines", "header", "expected"),
    [
        (["abc,Cash loans,1,2,3,x"], None, r"row 1: field SK_ID_CURR: not an integer"),
        (
            ["100001,Cash loans,1,2,3,x", "100002,Cash loans,lots,2,3,x"],
            None,
            r"row 2: field AMT_INCOME_TOTAL",
        ),
        (["100001,Cash loans,1,-2,3,x"], None, r"row 1: field AMT_CREDIT: .*greater than or equal to 0"),
        (["100001,Cash loans,1,2,24,x"], None, r"row 1: field HOUR_APPR_PROCESS_START"),
        (["100001,Cash loans,1,2,7.5,x"], None, r"row 1: field HOUR_APPR_PROCESS_START: not a whole number"),
        (["1,2"], "ID,AMT_CREDIT\n", r"missing column SK_ID_CURR"),
        ([], None, r"no application rows"),
    ],
)
def test_bad_rows_name_file_row_and_field(
    tmp_path: Path, lines: list[str], header: str | None, expected: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text((header or HEADER) + "".join(line + "\n" for line in lines))
    with pytest.raises(ProducerInputError, match=expected) as info:
        read_csv_applications(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_cli_input_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    from credit_scorer.cli import app

    runner = CliRunner()
    bad = write_csv(tmp_path / "bad.csv", ["100001,Cash loans,1,oops,3,x"])
    cases = [
        ([str(bad)], f"{bad}: row 1: field AMT_CREDIT"),
        ([str(tmp_path / "missing.csv")], "missing.csv: no such file"),
        ([str(tmp_path / "x.parquet")], "expected a .csv or .csv.gz file"),
        ([], "give either a CSV file or --synthetic N"),
        (["--synthetic", "5", "--rate", "-1"], "option --rate must be >= 0"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["stream", "produce", *args])
        assert result.exit_code == 2, (args, result.output)
        err_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(err_lines) == 1 and message in err_lines[0], (args, result.stderr)


def test_cli_streams_synthetic_applications(
    kafka_bootstrap: str, make_topics: Callable[..., KafkaTopics]
) -> None:
    from credit_scorer.cli import app

    topics = make_topics(partitions=2)
    result = CliRunner().invoke(
        app,
        ["stream", "produce", "--synthetic", "120", "--rate", "0", "--bootstrap-servers", kafka_bootstrap,
         "--topic", topics.applications],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "sent 120 events" in result.stdout

    import asyncio

    records = asyncio.run(consume_all(kafka_bootstrap, topics.applications, 120))
    assert len(records) == 120


def test_cli_unreachable_broker_exits_1(tmp_path: Path) -> None:
    from credit_scorer.cli import app
    from devtools.launchers import free_port

    result = CliRunner().invoke(
        app, ["stream", "produce", "--synthetic", "3", "--bootstrap-servers", f"127.0.0.1:{free_port()}"]
    )
    assert result.exit_code == 1
    assert "error: cannot connect to the broker" in result.stderr


def test_real_sample_rows_are_whole_forms(sample_dir: Path) -> None:
    from schemas.events import APPLICATION_FIELDS

    rows = read_csv_applications(sample_dir / "application_test.csv.gz")
    assert len(rows) == 48_744 == len({r.sk_id_curr for r in rows})
    for row in rows[:500]:
        assert list(row.fields) == list(APPLICATION_FIELDS) and row.fields["AMT_CREDIT"] > 0
    # each event the producer makes from a row is that row's form, as the worker parses it
    factory = EventFactory(run_id="real")
    for row in rows[:: len(rows) // 50]:
        app = parse_application(factory.make(row)[1], 65536)
        assert app.sk_id_curr == row.sk_id_curr and app.scoring_fields() == row.fields


def test_synthetic_rows_are_whole_valid_forms() -> None:
    from schemas.events import APPLICATION_FIELDS

    rows = synthetic_applications(200, seed=1)
    assert rows == synthetic_applications(200, seed=1)  # deterministic for a seed
    assert all(list(r.fields) == list(APPLICATION_FIELDS) for r in rows)
    factory = EventFactory(run_id="synth")
    assert all(parse_application(factory.make(r)[1], 65536).sk_id_curr == r.sk_id_curr for r in rows)


@pytest.mark.parametrize(
    ("column", "cell", "expected"),
    [
        ("DAYS_BIRTH", "120", r"row 1: field DAYS_BIRTH: Input should be between -54790 and 0 \(got 120\)"),
        ("DAYS_EMPLOYED", "12", r"row 1: field DAYS_EMPLOYED: Input should be between -54790 and 0, or one"),
        ("EXT_SOURCE_2", "1.5", r"row 1: field EXT_SOURCE_2: .*less than or equal to 1"),
        ("CNT_CHILDREN", "1.5", r"row 1: field CNT_CHILDREN: not a whole number: '1.5'"),
        ("FLAG_DOCUMENT_3", "yes", r"row 1: field FLAG_DOCUMENT_3: not a number: 'yes'"),
    ],
)
def test_a_form_value_outside_the_contract_names_its_row_and_field(
    tmp_path: Path, column: str, cell: str, expected: str
) -> None:
    path = tmp_path / "form.csv"
    path.write_text(f"SK_ID_CURR,AMT_CREDIT,{column}\n100001,1000.0,{cell}\n")
    with pytest.raises(ProducerInputError, match=expected):
        read_csv_applications(path)


def test_malformed_payloads_are_all_rejected() -> None:
    for payload in MALFORMED_PAYLOADS:
        with pytest.raises(InvalidEvent):
            parse_application(payload, 65536)
