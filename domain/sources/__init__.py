"""Pure logic of the display sources (an X server today): key maps, damage to capture boxes,
cursor pixel formats. The adapters in ``adapters/sources/`` do the X protocol and the I/O."""
