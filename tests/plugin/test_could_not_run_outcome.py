"""A check that could not run is *error* in every output — results.json, JUnit (``<error>``)
and pytest's own terminal line (``ERROR``) — while a refused certificate and a wrong answer
stay *failed* (through the real plugin, in a subprocess)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.tmp_suite import run_tmp_suite

SOURCE = '''
import socket
import ssl

from probes import smtp


def test_unreachable():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    smtp.connect("127.0.0.1", port, 2, "closed")


def test_certificate_refused():
    raise ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate")


def test_wrong_answer():
    assert "degraded" == "ok"
'''


def test_could_not_run_is_error_in_terminal_junit_and_results(tmp_path):
    run = run_tmp_suite(tmp_path, SOURCE, "-rA")
    out = run.proc.stdout
    assert run.proc.returncode == 1, out
    assert run.outcomes() == {"test_unreachable": "error", "test_certificate_refused": "failed",
                              "test_wrong_answer": "failed"}
    assert "ERROR test_tmp.py::test_unreachable" in out, out
    assert "FAILED test_tmp.py::test_unreachable" not in out, out
    assert "FAILED test_tmp.py::test_certificate_refused" in out, out
    assert "2 failed, 1 error" in out, out
    suite = ET.parse(run.run_dir / "junit.xml").getroot().find("testsuite")
    assert (suite.get("errors"), suite.get("failures")) == ("1", "2")
    cases = {case.get("name"): [child.tag for child in case] for case in suite.iter("testcase")}
    assert "error" in cases["test_unreachable"] and "failure" not in cases["test_unreachable"]
    assert "failure" in cases["test_certificate_refused"]
    error = next(suite.iter("testcase")).find("error")
    assert error is not None and "could not run: " in error.get("message")
