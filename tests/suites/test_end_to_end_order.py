"""The end-to-end checks (mail suite and post_deploy) open the receiving mailbox before they
send anything, and name every test message they could not delete.

A mailbox that cannot be read (IMAP logs in but INBOX cannot be opened: the lab's
imap-store-unavailable) makes each check an *error* "blocked: ..." with nothing submitted: no
submission session in the evidence, nothing new in Postfix's queue. Mail that is accepted and
never delivered (delivery-broken) cannot be deleted: the failure or a warning names it by
Message-ID, Subject and mailbox, and so does the check's evidence (a measured value).
"""
from __future__ import annotations

import json
import subprocess

from lab import paths
from tests.labctl import SuiteRun, run_suite
from tests.profile_variants import lab_variant

E2E = ("suites/mail/test_end_to_end.py::test_message_with_attachment_arrives_intact",
       "suites/mail/test_end_to_end.py::test_success_dsn_returned",
       "suites/post_deploy/test_end_to_end.py::test_message_submitted_is_read_back")


def queued_ids() -> set[str]:
    """Queue ids in the lab Postfix's queue (``postqueue -j``)."""
    output = subprocess.run(["postqueue", "-c", str(paths.service_dir("postfix")), "-j"],
                            capture_output=True, text=True, timeout=15, check=True).stdout
    return {json.loads(line)["queue_id"] for line in output.splitlines()}


def transcripts(run: SuiteRun) -> list[str]:
    folder = (run.reports_dir.parent.parent / "evidence" / run.results["metadata"]["run_id"]
              / "transcripts")
    return sorted(p.name for p in folder.glob("*.txt"))


def by_test(run: SuiteRun) -> dict[str, dict]:
    return {r["nodeid"]: r for r in run.results["results"]}


def test_unreadable_mailbox_blocks_before_sending(lab_fault, tmp_path):
    lab_fault("imap-store-unavailable")
    before = queued_ids()
    run = run_suite(*E2E, "--evidence", tmp_path=tmp_path)
    assert run.outcomes() == {test: "error" for test in E2E}, run.messages()
    for test, result in by_test(run).items():
        assert "blocked: IMAP SELECT INBOX to " in result["message"], result["message"]
        assert "@" in result["message"], f"{test}: the mailbox is not named: {result['message']}"
    names = transcripts(run)
    assert names, "the IMAP sessions left no transcript"
    assert not [n for n in names if "submission" in n], f"something was submitted: {names}"
    assert queued_ids() == before, "a test message reached Postfix's queue"


def test_undeletable_message_is_named(lab_fault, tmp_path):
    profile = lab_variant(tmp_path, "lab-short-deadline",
                          {"delivery_deadline_s = 20": "delivery_deadline_s = 2"})
    lab_fault("delivery-broken")
    run = run_suite(*E2E, "--env", str(profile), "--evidence", tmp_path=tmp_path)
    assert run.outcomes() == {test: "failed" for test in E2E}, run.messages()
    results = by_test(run)
    for test, result in results.items():
        left = [m["value"] for m in result["measured"] if m["name"] == "undeleted_test_message"]
        assert left and all("Message-ID <" in v and "Subject '[mssante-check] " in v
                            and "mailbox " in v for v in left), f"{test}: {result['measured']}"
    read_back = results[E2E[2]]["message"]
    assert "test message left undeleted: Message-ID <" in read_back, read_back
    for test in E2E[:2]:                # the mail suite's clean-up names it in a warning
        warnings = results[test]["warnings"]
        assert any(w.startswith("test message not deleted: Message-ID <") for w in warnings), (
            f"{test}: {warnings}")
