"""Trio adapters: transports, listeners, client sessions and display workers.

They run the pure machines of :mod:`domain` over real streams. Each client session is a
nursery that owns all of its channel connections; memory channels and wake-ups replace the C
server's dispatcher socketpairs.
"""
