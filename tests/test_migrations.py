"""The schema only changes through numbered migrations; each step's exact schema is pinned."""

from pathlib import Path

import pytest
from conftest import raw_connection

from cope_local.errors import CopeError
from cope_local.home import ensure_home
from cope_local.store import migrate
from cope_local.store.database import Store

SNAPSHOTS = Path(__file__).parent / "schema"
STEPS = [m.number for m in migrate.available()]


def schema(conn) -> str:
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'writings_fts_%' ORDER BY type, name"
    )
    return "\n".join(f"-- {kind} {name}\n{sql};" for kind, name, sql in rows) + "\n"


def test_every_step_has_a_pinned_schema():
    assert sorted(int(p.stem) for p in SNAPSHOTS.glob("*.sql")) == STEPS


@pytest.mark.parametrize("step", STEPS)
def test_schema_after_each_migration_is_exactly_the_pinned_one(tmp_path, step):
    with Store.open(ensure_home(tmp_path), upto=step) as store:
        assert schema(store.conn) == (SNAPSHOTS / f"{step:04d}.sql").read_text()
        assert migrate.applied(store.conn) == list(range(1, step + 1))


@pytest.mark.parametrize("step", STEPS)
def test_a_database_from_every_earlier_step_upgrades_to_the_newest(tmp_path, step):
    home = ensure_home(tmp_path)
    with Store.open(home, upto=step) as store:
        person = store.ensure_profile("ada")
        store.add_writing(person, "headline", {"text": "an article"}, "A Headline")
        store.conn.commit()
    with Store.open(home) as store:
        assert schema(store.conn) == (SNAPSHOTS / f"{STEPS[-1]:04d}.sql").read_text()
        assert [w.output for w in store.writings(profile="ada")] == ["A Headline"]
        assert [w.output for w in store.writings(search="article")] == ["A Headline"]


def test_a_database_from_a_newer_version_is_refused(tmp_path):
    home = ensure_home(tmp_path)
    Store.open(home).close()
    conn = raw_connection(home.db_path)
    conn.execute("INSERT INTO _migrations VALUES (999, 'future', 'then')")
    conn.commit()
    conn.close()
    with pytest.raises(CopeError, match="newer cope-local"):
        Store.open(home)


def test_a_failing_migration_leaves_nothing_behind(tmp_path):
    home = ensure_home(tmp_path)
    Store.open(home, upto=1).close()
    broken = migrate.Migration(2, "broken", "CREATE TABLE half (x); SELECT no_such_function();")
    conn = raw_connection(home.db_path)
    with pytest.raises(CopeError, match="0002_broken failed"):
        migrate._apply(conn, broken)
    assert "half" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert migrate.applied(conn) == [1]
