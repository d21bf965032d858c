"""The trust anchors the profile names: the bundle every chain check relies on.

A production bundle holding a TEST root would make every TEST certificate look valid in
production, and an anchor that is also in the forbidden bundle makes that bundle meaningless.
"""
from __future__ import annotations

import pytest

from probes import certificates


@pytest.mark.requirement("MSS-IGC-TRUST-STORE")
def test_trust_anchors(trust, judge):
    judge("trust", certificates.trust_store(trust.anchors, trust.forbidden, trust.production))
