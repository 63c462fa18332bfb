"""LZ_RGB against LZ4 and the raw bitmap on 1080p images: bytes and milliseconds per encode.

Usage (from the project root, with the project's virtualenv):

    .venv/bin/python benchmarks/lz_rgb.py [--runs 15] [--json FILE]

Images: the test suite's terminal-like desktop (``tests/domain/test_lz.py``'s
``desktop_like``: monospace text on flat colours), the same with alpha, and random pixels.
Each encoder runs ``--runs`` times per image after a warm-up (numba compiles or loads its
cache there); printed: a table of bytes, ratio to the bitmap and min/median milliseconds,
then one JSON object. Measurements only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "domain"))

from test_lz import desktop_like  # noqa: E402

from spice.domain.codecs.lz import encode_lz_rgb32, encode_lz_rgba, warm_up  # noqa: E402
from spice.domain.codecs.lz4_image import encode_lz4_bgrx  # noqa: E402


def lz4(pixels: np.ndarray) -> bytes:
    height, width = pixels.shape[:2]
    return encode_lz4_bgrx(pixels.tobytes(), width, height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    started = time.perf_counter()
    warm_up()
    warm_up_ms = (time.perf_counter() - started) * 1000

    text = desktop_like()
    with_alpha = text.copy()
    with_alpha[..., 3] = 255
    with_alpha[:40, :, 3] = 128  # a translucent top bar
    noise = np.random.default_rng(2).integers(0, 256, text.shape, dtype=np.uint8)
    cases: list[tuple[str, np.ndarray, str, Callable[[np.ndarray], bytes]]] = [
        ("text 1080p", text, "lz rgb32", encode_lz_rgb32),
        ("text 1080p", text, "lz4", lz4),
        ("text+alpha 1080p", with_alpha, "lz rgba", encode_lz_rgba),
        ("noise 1080p", noise, "lz rgb32", encode_lz_rgb32),
        ("noise 1080p", noise, "lz4", lz4),
    ]
    rows = []
    for image, pixels, codec, encode in cases:
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            size = len(encode(pixels))
            times.append((time.perf_counter() - t0) * 1000)
        rows.append(
            {
                "image": image,
                "codec": codec,
                "bytes": size,
                "bitmap_bytes": pixels.nbytes,
                "ms_min": round(min(times), 2),
                "ms_median": round(statistics.median(times), 2),
            }
        )
    print(f"warm_up: {warm_up_ms:.0f} ms")
    print(f"{'image':18} {'codec':9} {'bytes':>10} {'of bitmap':>10} {'ms min':>7} {'ms med':>7}")
    for r in rows:
        share = r["bytes"] / r["bitmap_bytes"]
        print(
            f"{r['image']:18} {r['codec']:9} {r['bytes']:>10} {share:>10.2%} "
            f"{r['ms_min']:>7.1f} {r['ms_median']:>7.1f}"
        )
    result = {"warm_up_ms": round(warm_up_ms), "runs": args.runs, "rows": rows}
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
