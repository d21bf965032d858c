"""Policies as data, and the generic engines that judge measurements against them.

The policy files live in ``fixtures/policies/`` (ANSSI TLS is the default); a site can ship its
own file with the same schema. Engines here are pure: no network, no pytest.
"""
