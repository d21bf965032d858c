"""The trust anchors the profile names: the bundle every chain check relies on.

They must be IGC Santé's: in production exactly the agency's PRODUCTION root and intermediate
(by SHA-256, fixtures/igc-sante/; the profile loader refuses others already), in a test profile
the TEST hierarchy by name (``OU=IGC-SANTE TEST``, ``O=ASIP-SANTE``) unless the profile declares
them self-made. A production bundle holding a TEST root would make every TEST certificate look
valid in production, and an anchor that is also in the forbidden bundle makes that bundle
meaningless.
"""
from __future__ import annotations

import pytest

from plugins import igc_sante
from probes import certificates


@pytest.mark.requirement("MSS-IGC-TRUST-STORE")
def test_trust_anchors(trust, judge):
    judge("trust", certificates.trust_store(
        trust.anchors, trust.forbidden, trust.production,
        igc_production=igc_sante.production_fingerprints(), self_made=trust.self_made))
