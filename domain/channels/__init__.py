"""One state machine per channel kind, each a :class:`domain.channel.ChannelConnection`."""
