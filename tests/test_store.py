"""The store's promises: private files, WAL with a busy timeout, all-or-nothing writes, search."""

import os
import stat

import pytest

from cope_local.home import ensure_home
from cope_local.store.database import Store


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_home_layout_is_private(cope_home):
    home = ensure_home()
    assert home.root == cope_home
    with Store.open(home) as store:
        store.ensure_profile("ada")
        store.conn.commit()
        assert mode(home.db_path) == 0o600
        assert mode(str(home.db_path) + "-wal") == 0o600
    for folder in (home.root, home.adapters, home.models, home.logs):
        assert mode(folder) == 0o700


def test_wal_mode_and_busy_timeout(store):
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_a_reader_is_not_blocked_by_a_writer(cope_home):
    home = ensure_home()
    with Store.open(home) as writer, Store.open(home) as reader:
        person = writer.ensure_profile("ada")
        writer.conn.commit()
        with writer.transaction():
            writer.add_writing(person, "headline", {"text": "x"}, "Pending")
            assert reader.writings() == []  # WAL: readers see the last commit, immediately
        assert [w.output for w in reader.writings()] == ["Pending"]


def test_transaction_rolls_back_on_error(store):
    person = store.ensure_profile("ada")
    store.conn.commit()
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.add_writing(person, "headline", {"text": "x"}, "Lost")
            raise RuntimeError("boom")
    assert store.writings() == []


def test_search_treats_punctuation_as_text(store):
    person = store.ensure_profile("ada")
    store.add_writing(person, "email", {"subject": "Q3 plan: AND/OR?"}, "We ship in May.")
    store.conn.commit()
    assert [w.output for w in store.writings(search="AND/OR?")] == ["We ship in May."]
    assert [w.output for w in store.writings(search="ship may")] == ["We ship in May."]
    assert store.writings(search="ship june") == []


def test_deleting_a_writing_removes_it_from_search(store):
    person = store.ensure_profile("ada")
    writing = store.add_writing(person, "email", {"subject": "hello"}, "unique-word")
    store.conn.commit()
    assert store.delete_writing(writing)
    assert store.writings(search="unique-word") == []
