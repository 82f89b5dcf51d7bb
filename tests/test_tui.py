"""The Textual app, driven by Pilot against a real store and the real embedded model."""

import asyncio

import pytest
from conftest import register_adapters
from textual.widgets import Button, DataTable, Input, Label, TextArea

from cope_local.home import ensure_home
from cope_local.store.database import Store
from tui.app import CopeApp
from tui.draft_pane import DraftPane
from tui.welcome import WelcomeScreen

HISTORY = (
    "text,title,date\n"
    "The council voted to build bike lanes on Main Street.,Council Backs Main Street Bike Lanes,2024-01-02\n"
    "Heavy rain flooded the subway overnight.,Subway Floods After Overnight Downpour,2024-01-03\n"
    "A bakery has sold the same sourdough for 90 years.,90 Years Of The Same Sourdough,2024-01-04\n"
)


@pytest.fixture
def with_history(cope, cope_home, tmp_path):
    (tmp_path / "h.csv").write_text(HISTORY)
    assert cope("import", tmp_path / "h.csv", "-p", "ann").exit_code == 0
    return cope_home


def app_for(home):
    return CopeApp(ensure_home(home))


def rows(app):
    table = app.query_one("#history-table", DataTable)
    return [table.get_row_at(i) for i in range(table.row_count)]


async def wait_for(pilot, predicate, timeout=60.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        status = pilot.app.query("#draft-status")
        assert asyncio.get_running_loop().time() < deadline, f"timed out; draft status: {status.first().render() if status else None}"
        await pilot.pause(0.05)


async def test_first_run_explains_what_to_import(cope_home):
    app = app_for(cope_home)
    async with app.run_test(size=(80, 24)) as pilot:
        assert isinstance(app.screen, WelcomeScreen)
        await pilot.click("#welcome-ok")
        assert not isinstance(app.screen, WelcomeScreen)


async def test_draft_streams_then_edit_and_accept_becomes_history(with_history):
    app = app_for(with_history)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.query_one("#profile").value == "ann"
        app.query_one("#field-text", Input).value = "The library will stop charging late fees."
        assert await pilot.click("#generate")
        await app.workers.wait_for_complete()
        await pilot.pause()
        area = app.query_one("#draft-text", TextArea)
        assert area.text.strip()
        assert "draft #1" in str(app.query_one("#draft-status", Label).render())
        area.text = "Library Drops Late Fees"
        await pilot.click("#accept")
    with Store.open(ensure_home(with_history)) as store:
        kept = [w for w in store.writings(profile="ann") if w.origin == "draft"]
        assert [w.output for w in kept] == ["Library Drops Late Fees"]


async def test_a_draft_can_be_rejected_and_says_what_the_person_did(with_history):
    from cope_local.store import drafts

    app = app_for(with_history)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("#field-text", Input).value = "The library will stop charging late fees."
        assert await pilot.click("#generate")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.query_one("#reject", Button).disabled and app.query_one("#accept", Button).disabled
        assert any("rejected" in message for message in notifications(app))
    with Store.open(ensure_home(with_history)) as store:
        assert [d["outcome"] for d in drafts.of_profile(store, store.profile_id("ann"))] == ["rejected"]


async def test_a_draft_can_be_cancelled(with_history, tmp_path):
    (tmp_path / "p.csv").write_text("summary,content\nMy bike,I love my bike.\n")
    with Store.open(ensure_home(with_history)) as store:
        from cope_local.importers import run_import

        run_import(store, [tmp_path / "p.csv"], "ann", "post")
    app = app_for(with_history)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("#task").value = "post"
        await wait_for(pilot, lambda: app.query("#field-summary"))
        app.query_one("#field-summary", Input).value = "What I learned from ten years of cycling to work"
        # Pressed, not clicked: the fields just changed, so the button's place on screen may be stale.
        app.query_one("#generate", Button).press()
        pane = app.query_one(DraftPane)
        await wait_for(pilot, lambda: pane.steps)  # the first token is in
        pane.action_cancel()  # as the Cancel button does (a Pilot click waits for idle)
        await wait_for(pilot, lambda: not app.query_one("#generate").disabled)
        assert "cancelled" in str(app.query_one("#draft-status", Label).render())
        assert not app.query_one("#generate").disabled
    with Store.open(ensure_home(with_history)) as store:
        assert store.conn.execute("SELECT count(*) FROM drafts").fetchone()[0] == 0


async def test_history_search_delete_and_import(with_history, tmp_path):
    app = app_for(with_history)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("TabbedContent").active = "history"
        await pilot.pause()
        assert len(rows(app)) == 3
        app.query_one("#history-search", Input).value = "sourdough"
        await pilot.pause()
        assert [r[5] for r in rows(app)] == ["90 Years Of The Same Sourdough"]
        app.query_one("#history-table").focus()
        await pilot.press("delete")
        await pilot.pause()
        assert rows(app) == []
        (tmp_path / "more.csv").write_text("text,title\nNew article.,New Headline\nbad row,\n")
        app.query_one("#import-path", Input).value = str(tmp_path / "more.csv")
        app.query_one("#import-profile", Input).value = "ann"
        await pilot.click("#preview")
        assert "1 items to import, 1 rejected" in str(app.query_one("#import-report").render())
        await pilot.click("#import")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "imported 1" in str(app.query_one("#import-report").render())
        app.query_one("#history-search", Input).value = ""
        await pilot.pause()
        assert len(rows(app)) == 3


async def test_a_running_import_can_be_cancelled_and_stores_nothing(with_history, tmp_path):
    big = tmp_path / "big.csv"
    big.write_text("text,title\n" + "".join(f"Article number {i}.,Headline {i}\n" for i in range(200_000)))
    app = app_for(with_history)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("TabbedContent").active = "history"
        app.query_one("#import-path", Input).value = str(big)
        app.query_one("#import-profile", Input).value = "ann"
        app.query_one("#import", Button).press()
        await wait_for(pilot, lambda: str(app.query_one("#import", Button).label) == "Cancel")
        app.query_one("#import", Button).press()  # the same button now cancels
        await wait_for(pilot, lambda: "cancelled" in str(app.query_one("#import-report").render()))
        assert str(app.query_one("#import", Button).label) == "Import"
        assert len(app.store.writings()) == 3


async def test_adapters_list_and_rollback(with_history, lora_files):
    with Store.open(ensure_home(with_history)) as store:
        for path in (lora_files["tam"], lora_files["user"]):
            register_adapters(store, store.profile_id("ann"), "headline", {"user": path})
    app = app_for(with_history)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("TabbedContent").active = "adapters"
        app.query_one("#adapter-profile").value = "ann"
        app.query_one("#adapter-task").value = "headline"
        await pilot.pause()
        table = app.query_one("#adapter-table", DataTable)
        assert [table.get_row_at(i)[3:5] for i in range(table.row_count)] == [["v2", "●"], ["v1", ""]]
        await pilot.click("#rollback")
        await pilot.pause()
        assert [table.get_row_at(i)[3:5] for i in range(table.row_count)] == [["v2", ""], ["v1", "●"]]


def steady(app):
    for widget in app.query("Input, TextArea"):
        widget.cursor_blink = False


def test_snapshot_welcome(snap_compare, cope_home):
    assert snap_compare(app_for(cope_home), terminal_size=(80, 24), run_before=lambda pilot: steady(pilot.app))


def test_snapshot_draft(snap_compare, with_history):
    assert snap_compare(app_for(with_history), terminal_size=(80, 24), run_before=lambda pilot: steady(pilot.app))


def test_snapshot_history(snap_compare, with_history):
    async def show(pilot):
        pilot.app.query_one("TabbedContent").active = "history"
        await pilot.pause()
        steady(pilot.app)

    assert snap_compare(app_for(with_history), terminal_size=(80, 24), run_before=show)


@pytest.mark.slow
async def test_eval_tab_runs_an_evaluation(with_history, tmp_path):
    from test_eval import write_lamp

    data = write_lamp(tmp_path / "lamp")
    app = app_for(with_history)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("TabbedContent").active = "eval"
        app.query_one("#eval-data", Input).value = str(data)
        app.query_one("#eval-users", Input).value = "1"
        app.query_one("#eval-methods", Input).value = "base,rag"
        await pilot.pause()
        await pilot.click("#eval-run")
        await wait_for(pilot, lambda: not app.query_one("#eval-run").disabled, timeout=300)
        assert (with_history / "eval" / "lamp" / "results.json").exists()
        assert "█" in app.query_one("#eval-results").source  # the chart, drawn in the terminal


async def test_nightly_schedule_switch_writes_and_removes_the_timer(with_history, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    timer = tmp_path / "config" / "systemd" / "user" / "cope-local-train.timer"
    app = app_for(with_history)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("TabbedContent").active = "adapters"
        await pilot.pause()
        switch = app.query_one("#schedule")
        assert switch.value is False
        switch.value = True
        await pilot.pause()
        assert "OnCalendar=*-*-* 03:00:00" in timer.read_text()
        switch.value = False
        await pilot.pause()
        assert not timer.exists()


async def test_settings_choose_model_and_threads(with_history):
    from cope_local.store.models import EMBEDDED_NAME, embedded_model_path

    with Store.open(ensure_home(with_history)) as store:
        from cope_local.store import models

        models.add(store, embedded_model_path(), "smol-copy")
    app = app_for(with_history)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("TabbedContent").active = "settings"
        await pilot.pause()
        assert app.query_one("#settings-model").value == EMBEDDED_NAME
        app.query_one("#settings-model").value = "smol-copy"
        app.query_one("#settings-threads", Input).value = "2"
        await pilot.click("#settings-save")
    with Store.open(ensure_home(with_history)) as store:
        assert store.setting("model") == "smol-copy" and store.setting("threads") == "2"


async def test_settings_switch_the_data_folder(with_history, tmp_path, monkeypatch):
    from cope_local.home import home_root

    app = app_for(with_history)
    other = tmp_path / "elsewhere"
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("TabbedContent").active = "settings"
        await pilot.pause()
        assert app.query_one("#settings-home", Input).value == str(with_history)
        app.query_one("#settings-home", Input).value = str(other)
        await pilot.click("#settings-save")
        await pilot.pause()
        assert app.home.root == other and app.store.profiles() == []
        assert (other / "cope.db").exists()
    monkeypatch.delenv("COPE_HOME")
    assert home_root() == other.resolve()  # remembered for the next start


def notifications(app):
    return [n.message for n in app._notifications]


async def retrain_until(app, pilot, said):
    """Press Retrain for ann; wait for a notification `said` accepts and for the run to end."""
    app.query_one("TabbedContent").active = "adapters"
    app.query_one("#adapter-profile").value = "ann"
    await pilot.pause()
    app.query_one("#retrain", Button).press()
    await wait_for(pilot, lambda: any(said(m) for m in notifications(app)), timeout=120)
    await wait_for(pilot, lambda: not app.query_one("#retrain", Button).disabled)


async def test_retrain_runs_in_a_child_process_and_reports_its_outcome(with_history):
    app = app_for(with_history)
    async with app.run_test(size=(80, 24)) as pilot:
        await retrain_until(app, pilot, lambda m: "need 8" in m)


async def test_a_crash_while_retraining_is_reported_and_the_app_stays_up(with_history, monkeypatch):
    """llama.cpp dying by a signal in the retrain takes only the child down; the app says what to try."""
    import sys

    from cope_local.jobs import guard

    crash = [sys.executable, "-c", "import os, signal; open(os.environ['COPE_CRASH_NOTE'], 'w').write("
             "'decoding with the model /m/base.gguf (extra buffers)'); os.kill(os.getpid(), signal.SIGSEGV)"]
    monkeypatch.setattr("tui.adapters_pane.Watched", lambda argv, **kw: guard.Watched(argv, command=crash, **kw))
    app = app_for(with_history)
    async with app.run_test(size=(80, 24)) as pilot:
        await retrain_until(app, pilot, lambda m: "SIGSEGV" in m and "COPE_LLAMA_BUFFERS=plain" in m)
        assert app.is_running


async def test_a_failed_draft_says_so_in_the_status_and_a_message(with_history):
    app = app_for(with_history)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("#field-text", Input).value = ""
        await pilot.click("#generate")
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = str(app.query_one("#draft-status", Label).render())
        assert status.startswith("failed") and "drafting" not in status
        assert notifications(app) and not app.query_one("#generate", Button).disabled


async def test_the_adapters_tab_lists_recent_training_runs(with_history):
    with Store.open(ensure_home(with_history)) as store:
        run = store.start_training_run(store.profile_id("ann"), "headline", "f")
        store.training_progress(run, "sft", 0.5)
        store.finish_training_run(run, "failed", "cancelled; the previous adapter stays active")
    app = app_for(with_history)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("TabbedContent").active = "adapters"
        await pilot.pause()
        table = app.query_one("#runs-table", DataTable)
        assert table.row_count == 1 and table.get_row_at(0)[1:6] == ["ann", "headline", "failed", "sft", "50%"]


async def test_leaving_the_app_closes_its_loaded_models(with_history):
    from cope_local.jobs import draft

    app = app_for(with_history)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("#field-text", Input).value = "The library will stop charging late fees."
        assert await pilot.click("#generate")
        await app.workers.wait_for_complete()
        engines = list(draft._engines.values())
        assert engines
    assert draft._engines == {} and all(engine.model.closed for engine in engines)
