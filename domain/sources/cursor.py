"""X cursor images to the B, G, R, A straight-alpha pixels a SPICE cursor carries.

XFixes hands a cursor as 32-bit ARGB words with premultiplied alpha (the Render convention);
SPICE's ALPHA cursor is B, G, R, A bytes with straight alpha. Colour is divided back out of
the alpha, rounding to nearest; fully transparent pixels become (0, 0, 0, 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def argb_premultiplied_to_bgra(
    words: Sequence[int] | npt.NDArray[np.uint32], width: int, height: int
) -> npt.NDArray[np.uint8]:
    """(height, width, 4) uint8 B, G, R, A with straight alpha from width*height ARGB words."""
    argb = np.asarray(words, dtype=np.uint64).astype(np.uint32)
    if argb.size != width * height:
        raise ValueError(f"{argb.size} cursor words for {width}x{height}")
    le = argb.astype("<u4").reshape(height, width).view(np.uint8).reshape(height, width, 4)
    out = le.copy()  # little-endian ARGB words are B, G, R, A bytes
    alpha = out[..., 3].astype(np.uint32)
    for c in range(3):
        chan = out[..., c].astype(np.uint32)
        straight = np.where(alpha > 0, (chan * 255 + alpha // 2) // np.maximum(alpha, 1), 0)
        out[..., c] = np.minimum(straight, 255).astype(np.uint8)
    return out
