"""Run by test_lifecycle.py beside suites/smoke under ``--deploy`` and xdist (not collected on
its own: the name does not start with test_): what a post-deployment check sees of the
deployment through the ``deployment`` fixture, on a worker."""
from __future__ import annotations


def test_api_serves_the_deployed_version(deployment, api):
    assert deployment.state == "deployed" and deployment.backup_id
    assert api.get("/version").json()["version"] == deployment.version
