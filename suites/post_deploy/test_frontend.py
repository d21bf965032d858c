"""Post-deployment test 1 (front end): the page itself, not just a 200."""
from __future__ import annotations

import pytest


@pytest.mark.service("frontend")
@pytest.mark.requirement("SEED-POST-1B")
def test_frontend_serves_expected_page(frontend, env_profile):
    response = frontend.get("/")
    assert response.status_code == 200, f"front end answered {response.status_code}"
    expected = env_profile.section("frontend").get("expect_text")
    if expected:
        assert expected in response.text, f"front page does not contain {expected!r}"
