"""Property tests: the CSV, JSONL and mbox parsers round-trip what a writer produced, and never
crash on arbitrary input (they yield records or rejections, or call the file unreadable)."""

import csv
import email.message
import json
import mailbox

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cope_local.drafting.tasks import get_task
from cope_local.importers import mbox, tabular
from cope_local.importers.records import Record, Rejection, UnreadableFile

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
field_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40
).filter(lambda s: s.strip())
rows = st.lists(st.tuples(field_text, field_text), min_size=1, max_size=8)


def parsed(items):
    records = [i for i in items if isinstance(i, Record)]
    return [(r.inputs["text"], r.output) for r in records], [i for i in items if isinstance(i, Rejection)]


def expected(pairs):
    return [(text.strip(), title.strip()) for text, title in pairs]


@SETTINGS
@given(pairs=rows)
def test_csv_round_trip(tmp_path, pairs):
    path = tmp_path / "rows.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "title"])
        writer.writerows(pairs)
    records, rejected = parsed(list(tabular.parse_csv(path, get_task("headline"), {})))
    assert rejected == []
    assert records == expected(pairs)


@SETTINGS
@given(pairs=rows)
def test_jsonl_round_trip(tmp_path, pairs):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"text": a, "title": b}, ensure_ascii=False) + "\n" for a, b in pairs), encoding="utf-8")
    records, rejected = parsed(list(tabular.parse_jsonl(path, get_task("headline"), {})))
    assert rejected == []
    assert records == expected(pairs)


words = st.text(alphabet="abcdefghij FROMfrom,.", min_size=1, max_size=12)
body_lines = st.lists(words, min_size=1, max_size=6).map(lambda ls: "\n".join(ls))
subjects = st.text(alphabet=st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=30)


@SETTINGS
@given(messages=st.lists(st.tuples(subjects, body_lines), min_size=1, max_size=5))
def test_mbox_round_trip(tmp_path, messages):
    path = tmp_path / "sent.mbox"
    path.unlink(missing_ok=True)
    box = mailbox.mbox(path)
    for subject, body in messages:
        message = email.message.EmailMessage()
        message["From"] = "me@example.org"
        message["Subject"] = subject
        message.set_content(body)
        box.add(message)
    box.flush()
    box.close()
    items = list(mbox.parse(path, None))
    kept = [(i.inputs["subject"], i.output) for i in items if isinstance(i, Record)]
    want = [(s, mbox.clean_body(b)) for s, b in messages if mbox.clean_body(b)]
    assert kept == want
    assert len(items) == len(messages)


@SETTINGS
@given(data=st.binary(max_size=400))
def test_parsers_never_crash_on_garbage(tmp_path, data):
    for name, parse in (
        ("g.csv", lambda p: tabular.parse_csv(p, get_task("headline"), {})),
        ("g.jsonl", lambda p: tabular.parse_jsonl(p, get_task("headline"), {})),
        ("g.mbox", lambda p: mbox.parse(p, None)),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        try:
            items = list(parse(path))
        except UnreadableFile:
            continue
        assert all(isinstance(i, (Record, Rejection)) for i in items)
        assert all(i.line >= 1 for i in items)


@SETTINGS
@given(data=st.binary(max_size=400))
def test_mbox_parser_survives_garbage_after_a_from_line(tmp_path, data):
    path = tmp_path / "g.mbox"
    path.write_bytes(b"From x\n" + data)
    items = list(mbox.parse(path, None))
    assert all(isinstance(i, (Record, Rejection)) for i in items)
