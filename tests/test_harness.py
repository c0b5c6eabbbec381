"""The test harness itself: a module the test install promises fails its tests when it is missing."""

import conftest
import pytest


def test_a_promised_module_that_cannot_be_imported_fails_rather_than_skips(tmp_path, monkeypatch):
    marker = tmp_path / ".test-install"
    marker.write_text("no_such_module_for_the_harness\n")
    monkeypatch.setattr(conftest, "TEST_INSTALL", marker)
    with pytest.raises(pytest.fail.Exception, match="no_such_module_for_the_harness cannot be imported"):
        conftest.require("no_such_module_for_the_harness")


def test_a_module_the_install_did_not_promise_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "TEST_INSTALL", tmp_path / "absent")
    with pytest.raises(pytest.skip.Exception):
        conftest.require("no_such_module_for_the_harness")
