"""Message bodies of every channel, as attrs classes named after spice.proto's messages.

Server messages have ``MSG_TYPE`` and ``encode() -> bytes`` (the body, without data header).
Client messages have ``MSG_TYPE`` and ``decode(body) -> message`` which raises
:class:`domain.errors.MessageDecodeError` on a body that does not parse.
"""
