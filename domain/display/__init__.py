"""The display's pure parts: the surface with its tile generations, per-client pipes, the image
caches, and pixel conversions. The display channel machine (:mod:`domain.channels.display`)
and the adapters' display worker are built from these."""
