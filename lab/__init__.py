"""The lab: a real, local MSSanté-like operator built from Debian's daemons.

It is the default target of the suite (``--env lab``) and the target of the suite's own
tests. Everything it runs listens on 127.0.0.1 (see :mod:`lab.ports`) and keeps its state
under ``.lab/`` (see :mod:`lab.paths`). It can be started broken on purpose
(``python -m lab up --fault NAME``) so that every check can be shown to fail.
"""
