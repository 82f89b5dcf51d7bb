"""`cope schedule`: the nightly job's unit files (systemd user timer here; launchd on macOS)."""

import json
import sys

import pytest

from cope_local.jobs import schedule

pytestmark = pytest.mark.skipif(sys.platform == "darwin", reason="systemd layout")


def test_install_status_remove(cope, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    installed = json.loads(cope("schedule", "install", "--json").stdout)
    service = tmp_path / "systemd" / "user" / "cope-local-train.service"
    assert installed["installed"] and str(service) in installed["files"]
    text = service.read_text()
    assert "train --all" in text and "Nice=19" in text and "IOSchedulingClass=idle" in text
    assert f"Environment=COPE_HOME={tmp_path / 'home'}" in text  # the same data folder as now
    assert json.loads(cope("schedule", "status", "--json").stdout)["installed"]
    assert not json.loads(cope("schedule", "remove", "--json").stdout)["installed"]
    assert not service.exists()
    assert "not scheduled" in cope("schedule").stdout


def test_launchd_plist_is_well_formed():
    import plistlib

    plist = plistlib.loads(schedule.launchd_plist(4).encode())
    assert plist["ProgramArguments"][-2:] == ["train", "--all"]
    assert plist["StartCalendarInterval"]["Hour"] == 4 and plist["LowPriorityIO"]


def test_train_needs_a_profile_or_all(cope):
    result = cope("train")
    assert result.exit_code == 1 and "pass --profile NAME, or --all" in result.stderr
