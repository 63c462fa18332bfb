"""The pure core of trio-spice: wire codecs, link and channel state machines, capability
negotiation, surfaces and image encoders.

Nothing in this package does I/O. Bytes and events go in, bytes and events come out; time is
passed in as numbers. The adapters layer runs these machines over real transports.
"""
