"""The scale-out and soak harness (issue 18): N app processes on one store, a seeded mix.

``python -m soak --store redis --minutes 3`` (or ``nox -s soak -- --minutes 30``) starts the
store when the run needs its own (Redis Cluster, a throw-away PostgreSQL for faults), N
uvicorn processes of :mod:`soak.app` on their own loopback ports, drives the mix of
:mod:`soak.driver` through random processes, injects the fault of :mod:`soak.faults`,
checks the invariants of :mod:`soak.model` against the store, and writes a JSON file and
a Markdown report (:mod:`soak.report`). Every loop is bounded in count and time; traffic
goes to 127.0.0.1 only.
"""
