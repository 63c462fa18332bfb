"""The SPICE QUIC image stream (image type QUIC, 1): the C server's lossless codec for
photographic content, pixels in, the words spice-gtk and spice-html5 decode, and back. QUIC
(spice-common ``common/quic.c``, ``quic_tmpl.c``, ``quic_family_tmpl.c``; PROTOCOL.md §4.7)
predicts each colour component from its left and upper neighbours, folds the error to an
unsigned byte and writes it with a Golomb-Rice code whose parameter the context bucket of the
previous error picks; the buckets learn as the image goes, at pseudo-random sample points, and
a run mode codes repeated pixels with MELCODE. Decoders replay that learning, so this encoder
follows the C one bit for bit and its output is byte-identical. The stream is 32-bit words,
little-endian, filled from the most significant bit: five header words (magic, version, image
type, width, height), then the rows top to bottom; RGBA codes each row's alpha right after its
colours. The display pipe calls the encoders from a worker thread: the per-pixel loops are
numba-compiled with ``nogil``, so they run beside the event loop. The caller puts the image's
``uint32 data_size`` in front; :func:`decode_quic` is the inverse used by the tests.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from typing import Final, TypeVar, cast

import numpy as np
import numpy.typing as npt
from numba import njit

#: ASCII "QUIC" read as a little-endian word.
QUIC_MAGIC: Final = 0x43495551
#: Major 0, minor 0: the only version the decoders accept.
QUIC_VERSION: Final = 0
HEADER = struct.Struct("<5I")

Pixels = npt.NDArray[np.uint8]
Ints = npt.NDArray[np.int64]
Words = npt.NDArray[np.uint32]

_F = TypeVar("_F", bound=Callable[..., object])


def _jit(fn: _F) -> _F:
    """numba's ``njit`` that keeps the function's annotations visible to mypy."""
    return cast(_F, njit(nogil=True, cache=True)(fn))


class QuicImageType(enum.IntEnum):
    """``QuicImageType`` of spice-common ``quic.h``: the third header word."""

    INVALID = 0
    GRAY = 1
    RGB16 = 2
    RGB24 = 3
    RGB32 = 4
    RGBA = 5


# The model, as the C encoder fixes it at build time (quic.c's DEF* constants). Only the 8-bit
# family is needed: RGB32, RGB24 and RGBA all code 8-bit components.
_BPC: Final = 8
#: Longest Golomb codeword (DEFmaxclen); longer values take the escape ("not GR") code.
_MAX_CODE_LEN: Final = 26
#: Model evolution 3: context buckets hold 1, 2, 4, 8, ... error values.
_WAITMASK_MAX: Final = 6  # DEFwmimax: the wait mask grows to 2**6 - 1 and stays
_WAIT_NEXT: Final = 2048  # DEFwminext: pixels coded per wait-mask step
#: ``besttrigtab`` row for evolution 3: halve a bucket's counters above this code length sum,
#: by wait-mask index.
_TRIGGER: Final = np.array([110, 550, 900, 800, 550, 400, 350, 250, 140, 160, 140], np.int64)
#: MELCODE: the run-length order exponent for each of the 32 states.
# fmt: off
_MELC_ORDER: Final = np.array(
    [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7,
     8, 9, 10, 11, 12, 13, 14, 15],
    np.int64,
)
# fmt: on
#: ``tabrand_chaos``: the fixed pseudo-random table that spaces the model updates.
# fmt: off
_CHAOS: Final = np.array(
    [
        0x02C57542, 0x35427717, 0x2F5A2153, 0x9244F155, 0x7BD26D07, 0x354C6052, 0x57329B28,
        0x2993868E, 0x6CD8808C, 0x147B46E0, 0x99DB66AF, 0xE32B4CAC, 0x1B671264, 0x9D433486,
        0x62A4C192, 0x06089A4B, 0x9E3DCE44, 0xDAABEE13, 0x222425EA, 0xA46F331D, 0xCD589250,
        0x8BB81D7F, 0xC8B736B9, 0x35948D33, 0xD7AC7FD0, 0x5FBE2803, 0x2CFBC105, 0x013DBC4E,
        0x7A37820F, 0x39F88E9E, 0xEDD58794, 0xC5076689, 0xFCADA5A4, 0x64C2F46D, 0xB3BA3243,
        0x8974B4F9, 0x5A05AEBD, 0x20AFCD00, 0x39E2B008, 0x88A18A45, 0x600BDE29, 0xF3971ACE,
        0xF37B0A6B, 0x7041495B, 0x70B707AB, 0x06BEFFBB, 0x4206051F, 0xE13C4EE3, 0xC1A78327,
        0x91AA067C, 0x8295F72A, 0x732917A6, 0x1D871B4D, 0x4048F136, 0xF1840E7E, 0x6A6048C1,
        0x696CB71A, 0x7FF501C3, 0x0FC6310B, 0x57E0F83D, 0x8CC26E74, 0x11A525A2, 0x946934C7,
        0x7CD888F0, 0x8F9D8604, 0x4F86E73B, 0x04520316, 0xDEEEA20C, 0xF1DEF496, 0x67687288,
        0xF540C5B2, 0x22401484, 0x3478658A, 0xC2385746, 0x01979C2C, 0x5DAD73C8, 0x0321F58B,
        0xF0FEDBEE, 0x92826DDF, 0x284BEC73, 0x5B1A1975, 0x03DF1E11, 0x20963E01, 0xA17CF12B,
        0x740D776E, 0xA7A6BF3C, 0x01B5CCE4, 0x1118AA76, 0xFC6FAC0A, 0xCE927E9B, 0x00BF2567,
        0x806F216C, 0xBCA69056, 0x795BD3E9, 0xC9DC4557, 0x8929B6C2, 0x789D52EC, 0x3F3FBF40,
        0xB9197368, 0xA38C15B5, 0xC3B44FA8, 0xCA8333B0, 0xB7E8D590, 0xBE807FEB, 0xBF5F8360,
        0xD99E2F5C, 0x372928E1, 0x7C757C4C, 0x0DB5B154, 0xC01EDE02, 0x1FC86E78, 0x1F3985BE,
        0xB4805C77, 0x00C880FA, 0x974C1B12, 0x35AB0214, 0xB2DC840D, 0x5B00AE37, 0xD313B026,
        0xB260969D, 0x7F4C8879, 0x1734C4D3, 0x49068631, 0xB9F6A021, 0x6B863E6F, 0xCEE5DEBF,
        0x29F8C9FB, 0x53DD6880, 0x72B61223, 0x1F67A9FD, 0x0A0F6993, 0x13E59119, 0x11CCA12E,
        0xFE6B6766, 0x16B6EFFC, 0x97918FC4, 0xC2B8A563, 0x94F2F741, 0x0BFA8C9A, 0xD1537AE8,
        0xC1DA349C, 0x873C60CA, 0x95005B85, 0x9B5C080E, 0xBC8ABBD9, 0xE1EAB1D2, 0x6DAC9070,
        0x4EA9EBF1, 0xE0CF30D4, 0x1EF5BD7B, 0xD161043E, 0x5D2FA2E2, 0xFF5D3CAE, 0x86ED9F87,
        0x2AA1DAA1, 0xBD731A34, 0x9E8F4B22, 0xB1C2C67A, 0xC21758C9, 0xA182215D, 0xCCB01948,
        0x8D168DF7, 0x04238CFE, 0x368C3DBC, 0x0AEADCA5, 0xBAD21C24, 0x0A71FEE5, 0x9FC5D872,
        0x54C152C6, 0xFC329483, 0x6783384A, 0xEDDB3E1C, 0x65F90E30, 0x884AD098, 0xCE81675A,
        0x4B372F7D, 0x68BF9A39, 0x43445F1E, 0x40F8D8CB, 0x90D5ACB6, 0x4CD07282, 0x349EEB06,
        0x0C9D5332, 0x520B24EF, 0x80020447, 0x67976491, 0x2F931CA3, 0xFE9B0535, 0xFCD30220,
        0x61A9E6CC, 0xA487D8D7, 0x3F7C5DD1, 0x7D0127C5, 0x48F51D15, 0x60DEA871, 0xC9A91CB7,
        0x58B53BB3, 0x9D5E0B2D, 0x624A78B4, 0x30DBEE1B, 0x9BDF22E7, 0x1DF5C299, 0x2D5643A7,
        0xF4DD35FF, 0x03CA8FD6, 0x53B47ED8, 0x6F2C19AA, 0xFEB0C1F4, 0x49E54438, 0x2F2577E6,
        0xBF876969, 0x72440EA9, 0xFA0BAFB8, 0x74F5B3A0, 0x7DD357CD, 0x89CE1358, 0x6EF2CDDA,
        0x1E7767F3, 0xA6BE9FDB, 0x4F5F88F8, 0xBA994A3A, 0x08CA6B65, 0xE0893818, 0x9E00A16A,
        0xF42BFC8F, 0x9972EEDC, 0x749C8B51, 0x32C05F5E, 0xD706805F, 0x6BFBB7CF, 0xD9210A10,
        0x31A1DB97, 0x923A9559, 0x37A7A1F6, 0x059F8861, 0xCA493E62, 0x65157E81, 0x8F6467DD,
        0xAB85FF9F, 0x9331AFF2, 0x8616B9F5, 0xEDBD5695, 0xEE7E29B1, 0x313AC44F, 0xB903112F,
        0x432EF649, 0xDC0A36C0, 0x61CF2BBA, 0x81474925, 0xA8B6C7AD, 0xEE5931DE, 0xB2F8158D,
        0x59FB7409, 0x2E3DFAED, 0x9AF25A3F, 0xE1FED4D5,
    ],
    np.int64,
)
# fmt: on
#: The seed's starting value; each draw pre-increments it, so the first draw is entry 0.
_CHAOS_SEED: Final = 0xFF

#: Byte offset in a B,G,R,X/A pixel of each of the C encoder's four channels, in its order:
#: red, green, blue (coded in that order within a pixel), then alpha.
_CHANNEL_BYTE: Final = np.array([2, 1, 0, 3], np.int64)
_RGB: Final = 0  # first channel and component count of the colour pass
_RGB_COMPONENTS: Final = 3
_ALPHA: Final = 3
_BUCKETS: Final = 8  # bucket count for 256 error values under evolution 3

# Per-pass state (quic.c's CommonState): one for the colour pass, one for the alpha pass.
_WAITCNT, _SEED, _TRIG, _WMIDX, _WMILEFT, _MELCSTATE, _MELCLEN, _MELCORDER = range(8)
_STATE_FIELDS: Final = 8


def _build_family() -> tuple[Ints, Ints, Ints, Ints, Ints, Ints]:
    """The 8-bit code family: for each code ``k`` (0..7), values below ``2**k * prefix`` take
    a Golomb-Rice codeword (value >> k zeros, a one, the k low bits); the rest take an escape
    of ``prefix`` zeros and a fixed-length suffix, so no codeword exceeds 26 bits."""
    levels = 1 << _BPC
    code = np.zeros((levels, _BPC), np.int64)
    length = np.zeros((levels, _BPC), np.int64)
    gr_count = np.zeros(_BPC, np.int64)
    escape_len = np.zeros(_BPC, np.int64)
    escape_suffix = np.zeros(_BPC, np.int64)
    gr_threshold = np.zeros(_BPC, np.int64)
    for k in range(_BPC):
        prefix = min(_MAX_CODE_LEN - _BPC, (1 << (_BPC - k)) - 1)
        gr_count[k] = prefix << k
        escape_suffix[k] = (levels - (prefix << k) - 1).bit_length()
        escape_len[k] = prefix + escape_suffix[k]
        # A 32-bit window above this starts with a Golomb-Rice codeword (decoding only).
        gr_threshold[k] = (1 << (32 - prefix)) - 1
        for n in range(levels):
            if n < gr_count[k]:
                code[n, k] = (1 << k) | (n & ((1 << k) - 1))
                length[n, k] = (n >> k) + k + 1
            else:
                code[n, k] = n - gr_count[k]
                length[n, k] = escape_len[k]
    return code, length, gr_count, escape_len, escape_suffix, gr_threshold


def _build_buckets() -> Ints:
    """Context value -> bucket index: buckets of 1, 2, 4, ... values, the last one widened to
    the top when the next would not fit (quic.c ``fill_model_structures``, evolution 3)."""
    levels = 1 << _BPC
    index = np.zeros(levels, np.int64)
    start, size, number = 0, 1, 0
    while True:
        end = start + size - 1
        if end + size >= levels:
            end = levels - 1
        index[start : end + 1] = number
        if end == levels - 1:
            return index
        number += 1
        start = end + 1
        size *= 2


_CODE, _CODE_LEN, _GR_COUNT, _ESCAPE_LEN, _ESCAPE_SUFFIX, _GR_THRESHOLD = _build_family()
#: Codeword << 5 | its length: one load per coded value.
_CODEWORD: Final = (_CODE << 5) | _CODE_LEN
_BUCKET: Final = _build_buckets()
assert int(_BUCKET.max()) + 1 == _BUCKETS
_values = np.arange(256, dtype=np.int64)
#: Signed error (mod 256) -> folded value: 0, -1, 1, -2, ... become 0, 1, 2, 3, ...
_FOLD: Final = np.where(_values <= 127, _values << 1, ((255 - _values) << 1) + 1)
_UNFOLD: Final = np.where(_values & 1, 255 - (_values >> 1), _values >> 1)
del _values


# --- shared by both directions -----------------------------------------------------------


@_jit
def _new_state(state: Ints) -> None:
    state[_WAITCNT] = 0
    state[_SEED] = _CHAOS_SEED
    state[_WMIDX] = 0
    state[_TRIG] = _TRIGGER[0]
    state[_WMILEFT] = _WAIT_NEXT
    state[_MELCSTATE] = 0
    state[_MELCLEN] = _MELC_ORDER[0]
    state[_MELCORDER] = 1 << _MELC_ORDER[0]


@_jit
def _update_model(
    counters: Ints, bestcode: Ints, channel: int, context: int, value: int, trigger: int
) -> None:
    """Charge ``value``'s codeword length under every code to the context's bucket, keep the
    cheapest code (ties go to the larger k), and halve the sums when the best passes the
    trigger so the bucket keeps adapting."""
    bucket = _BUCKET[context]
    best = _BPC - 1
    counters[channel, bucket, best] += _CODE_LEN[value, best]
    best_len = counters[channel, bucket, best]
    for k in range(_BPC - 2, -1, -1):
        counters[channel, bucket, k] += _CODE_LEN[value, k]
        if counters[channel, bucket, k] < best_len:
            best = k
            best_len = counters[channel, bucket, k]
    bestcode[channel, bucket] = best
    if best_len > trigger:
        for k in range(_BPC):
            counters[channel, bucket, k] >>= 1


@_jit
def _at(pix: Pixels, row: int, i: int, byte: int) -> int:
    """A component as a signed integer (numba widens unsigned bytes to uint64, and uint64 mixed
    with int64 to float64)."""
    return int(np.int64(pix[row, i, byte]))


@_jit
def _predict(pix: Pixels, row: int, i: int, byte: int) -> int:
    """Row 0: the left neighbour (0 for the first pixel); later rows: the pixel above for the
    first pixel, else the floor of the mean of left and above."""
    if row == 0:
        if i == 0:
            return 0
        return _at(pix, row, i - 1, byte)
    if i == 0:
        return _at(pix, row - 1, 0, byte)
    return (_at(pix, row, i - 1, byte) + _at(pix, row - 1, i, byte)) >> 1


@_jit
def _same(pix: Pixels, row_a: int, i_a: int, row_b: int, i_b: int, first: int, count: int) -> bool:
    for c in range(first, first + count):
        if pix[row_a, i_a, _CHANNEL_BYTE[c]] != pix[row_b, i_b, _CHANNEL_BYTE[c]]:
            return False
    return True


# --- encoder -------------------------------------------------------------------------------


@_jit
def _put(
    out: Words, acc: int, nbits: int, words: int, code: int, length: int
) -> tuple[int, int, int]:
    """Append ``length`` bits (at most 31); a full 32-bit word goes to ``out``."""
    acc = (acc << length) | code
    nbits += length
    if nbits >= 32:
        nbits -= 32
        out[words] = (acc >> nbits) & 0xFFFFFFFF
        words += 1
        acc &= (1 << nbits) - 1
    return acc, nbits, words


@_jit
def _encode_row(
    pix: Pixels,
    packed: Words,
    row: int,
    first: int,
    count: int,
    same_mask: int,
    counters: Ints,
    bestcode: Ints,
    errors: Ints,
    folded: Ints,
    state: Ints,
    bits: Ints,
    out: Words,
) -> None:
    """Code one row of one pass (channels ``first`` .. ``first + count - 1``).

    ``errors[c, i + 1]`` holds the folded error of channel ``c`` at pixel ``i`` (``errors[c,
    0]`` stands for pixel -1); it is the next pixel's context. Pixels inside a run leave their
    entries as an earlier row left them, which is what the decoder sees too.
    """
    width = pix.shape[1]
    acc, nbits, words = bits[0], bits[1], bits[2]
    waitcnt = state[_WAITCNT]
    seed = state[_SEED]
    trigger = state[_TRIG]
    wmidx = state[_WMIDX]
    wmileft = state[_WMILEFT]
    melcstate = state[_MELCSTATE]
    melclen = state[_MELCLEN]
    melcorder = state[_MELCORDER]

    # The errors depend on the pixels alone: fold them for the whole row first, in loops
    # simple enough for the compiler to vectorise (the xor form is _FOLD without a load).
    for c in range(first, first + count):
        byte = _CHANNEL_BYTE[c]
        folded[c, 0] = _FOLD[(_at(pix, row, 0, byte) - _predict(pix, row, 0, byte)) & 0xFF]
        if row == 0:
            for i in range(1, width):
                error = (_at(pix, row, i, byte) - _at(pix, row, i - 1, byte)) & 0xFF
                folded[c, i] = ((error << 1) & 0xFF) ^ (-(error >> 7) & 0xFF)
        else:
            for i in range(1, width):
                above = _at(pix, row - 1, i, byte)
                error = (
                    _at(pix, row, i, byte) - ((_at(pix, row, i - 1, byte) + above) >> 1)
                ) & 0xFF
                folded[c, i] = ((error << 1) & 0xFF) ^ (-(error >> 7) & 0xFF)

    start = 0
    while True:
        # The row splits where the wait mask grows (every 2048 pixels, up to mask 63).
        grow = wmidx < _WAITMASK_MAX and wmileft <= width - start
        end = start + wmileft if grow else width
        if end > start:
            waitmask = (1 << wmidx) - 1
            i = start
            stopidx = i + waitcnt
            run_index = 0
            ended_in_run = False
            while i < end:
                if (
                    row > 0
                    and i > 2
                    and run_index != i
                    and (packed[row - 1, i - 1] ^ packed[row - 1, i]) & same_mask == 0
                    and (packed[row, i - 1] ^ packed[row, i - 2]) & same_mask == 0
                ):
                    # Run mode: the wait countdown pauses over the run's pixels.
                    run_index = i
                    waitcnt = stopidx - i
                    run = 0
                    while (packed[row, i] ^ packed[row, i - 1]) & same_mask == 0:
                        run += 1
                        i += 1
                        if i == end:
                            break
                    hits = 0
                    while run >= melcorder:
                        hits += 1
                        run -= melcorder
                        if melcstate < 31:
                            melcstate += 1
                            melclen = _MELC_ORDER[melcstate]
                            melcorder = 1 << melclen
                    while hits > 0:
                        n = min(hits, 24)
                        acc, nbits, words = _put(out, acc, nbits, words, (1 << n) - 1, n)
                        hits -= n
                    acc, nbits, words = _put(out, acc, nbits, words, run, melclen + 1)
                    if melcstate > 0:
                        melcstate -= 1
                        melclen = _MELC_ORDER[melcstate]
                        melcorder = 1 << melclen
                    if i == end:
                        ended_in_run = True
                        break
                    stopidx = i + waitcnt
                    continue

                for c in range(first, first + count):
                    value = folded[c, i]
                    codeword = _CODEWORD[value, bestcode[c, _BUCKET[errors[c, i]]]]
                    errors[c, i + 1] = value
                    # _put, inlined by hand: numba keeps it a call here, a third of the time.
                    length = codeword & 31
                    acc = (acc << length) | (codeword >> 5)
                    nbits += length
                    if nbits >= 32:
                        nbits -= 32
                        out[words] = (acc >> nbits) & 0xFFFFFFFF
                        words += 1
                        acc &= (1 << nbits) - 1
                if i == 0:
                    # The first pixel of a row consumes a pending wait or samples the model.
                    if waitcnt > 0:
                        waitcnt -= 1
                    else:
                        seed += 1
                        waitcnt = _CHAOS[seed & 0xFF] & waitmask
                        for c in range(first, first + count):
                            _update_model(
                                counters, bestcode, c, errors[c, 0], errors[c, 1], trigger
                            )
                    i = 1
                    stopidx = 1 + waitcnt
                elif i == stopidx:
                    for c in range(first, first + count):
                        _update_model(
                            counters, bestcode, c, errors[c, i], errors[c, i + 1], trigger
                        )
                    i += 1
                    seed += 1
                    stopidx = i + (_CHAOS[seed & 0xFF] & waitmask)
                else:
                    i += 1
            if not ended_in_run:
                waitcnt = stopidx - end
        if not grow:
            if wmidx < _WAITMASK_MAX:
                wmileft -= width - start
            break
        wmidx += 1
        trigger = _TRIGGER[min(wmidx, 10)]
        wmileft = _WAIT_NEXT
        start = end

    bits[0], bits[1], bits[2] = acc, nbits, words
    state[_WAITCNT] = waitcnt
    state[_SEED] = seed
    state[_TRIG] = trigger
    state[_WMIDX] = wmidx
    state[_WMILEFT] = wmileft
    state[_MELCSTATE] = melcstate
    state[_MELCLEN] = melclen
    state[_MELCORDER] = melcorder


@_jit
def _encode(
    pix: Pixels, packed: Words, rgb_mask: int, alpha_mask: int, alpha: bool, out: Words
) -> int:
    """Code every row after the five header words already in ``out``; return the word count."""
    height, width = pix.shape[0], pix.shape[1]
    counters = np.zeros((4, _BUCKETS, _BPC), np.int64)
    bestcode = np.full((4, _BUCKETS), _BPC - 1, np.int64)
    errors = np.zeros((4, width + 1), np.int64)
    folded = np.zeros((4, width), np.int64)
    states = np.zeros((2, _STATE_FIELDS), np.int64)
    _new_state(states[0])
    _new_state(states[1])
    bits = np.zeros(3, np.int64)
    bits[2] = 5
    for row in range(height):
        for c in range(4):
            errors[c, 0] = 0 if row == 0 else errors[c, 1]
        _encode_row(
            pix,
            packed,
            row,
            _RGB,
            _RGB_COMPONENTS,
            rgb_mask,
            counters,
            bestcode,
            errors,
            folded,
            states[0],
            bits,
            out,
        )
        if alpha:
            _encode_row(
                pix,
                packed,
                row,
                _ALPHA,
                1,
                alpha_mask,
                counters,
                bestcode,
                errors,
                folded,
                states[1],
                bits,
                out,
            )
    acc, nbits, words = bits[0], bits[1], bits[2]
    if nbits > 0:
        out[words] = (acc << (32 - nbits)) & 0xFFFFFFFF
        words += 1
    # The C encoder ends with a zero word, so a decoder's 32-bit look-ahead stays in bounds.
    out[words] = 0
    return int(words) + 1


_LITTLE = np.frombuffer(bytes((0xFF, 0xFF, 0xFF, 0)), np.uint32)[0] == 0x00FFFFFF
#: Masks over a pixel read as one native uint32: its B,G,R bytes, and its fourth byte.
_RGB_MASK: Final = 0x00FFFFFF if _LITTLE else 0xFFFFFF00
_ALPHA_MASK: Final = 0xFF000000 if _LITTLE else 0x000000FF


def _stream(kind: QuicImageType, pixels: Pixels) -> bytes:
    if pixels.ndim != 3 or pixels.shape[2] != 4 or pixels.dtype != np.uint8:
        raise ValueError(f"expected (height, width, 4) uint8 pixels, got {pixels.shape}")
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    if height == 0 or width == 0:
        raise ValueError("QUIC cannot code an empty image")
    pix = np.ascontiguousarray(pixels)
    packed = pix.view(np.uint32).reshape(height, width)
    passes = 2 if kind == QuicImageType.RGBA else 1
    components = 4 if kind == QuicImageType.RGBA else 3
    # Worst case: every component at the 26-bit limit, plus a run codeword (<= 1 bit per run
    # pixel + 16) at every pixel of each pass. The pages past what is written stay untouched.
    bound = (height * width * (_MAX_CODE_LEN * components + 17 * passes)) // 32 + 8
    out = np.empty(5 + bound, np.uint32)
    out[:5] = (QUIC_MAGIC, QUIC_VERSION, kind, width, height)
    words = _encode(pix, packed, _RGB_MASK, _ALPHA_MASK, passes == 2, out)
    return out[:words].astype("<u4", copy=False).tobytes()


def encode_quic_rgb32(pixels: Pixels) -> bytes:
    """The QUIC stream (type RGB32) of ``(height, width, 4)`` B,G,R,X pixels (C-contiguous
    ones are not copied); the fourth byte is ignored."""
    return _stream(QuicImageType.RGB32, pixels)


def encode_quic_rgba(pixels: Pixels) -> bytes:
    """The QUIC stream (type RGBA) of ``(height, width, 4)`` B,G,R,A pixels: each row's colours,
    then its alpha."""
    return _stream(QuicImageType.RGBA, pixels)


# --- decoder (tests and test clients) ----------------------------------------------------


@_jit
def _peek(stream: Words, pos: int) -> int:
    """The 32 bits starting at bit ``pos``, zeros past the end."""
    index = pos >> 5
    shift = pos & 31
    hi = int(np.int64(stream[index])) if index < stream.shape[0] else 0
    if shift == 0:
        return hi
    lo = int(np.int64(stream[index + 1])) if index + 1 < stream.shape[0] else 0
    return ((hi << shift) | (lo >> (32 - shift))) & 0xFFFFFFFF


@_jit
def _read_value(stream: Words, pos: int, k: int) -> tuple[int, int]:
    """One codeword under code ``k``: (value, new position); value > 255 means corrupt."""
    window = _peek(stream, pos)
    if window > _GR_THRESHOLD[k]:
        zeros = 0
        while window & (0x80000000 >> zeros) == 0:
            zeros += 1
        length = zeros + 1 + k
        value = (zeros << k) | ((window >> (32 - length)) & ((1 << k) - 1))
    else:
        length = _ESCAPE_LEN[k]
        value = _GR_COUNT[k] + ((window >> (32 - length)) & ((1 << _ESCAPE_SUFFIX[k]) - 1))
    return value, pos + length


@_jit
def _decode_row(
    pix: Pixels,
    row: int,
    first: int,
    count: int,
    counters: Ints,
    bestcode: Ints,
    errors: Ints,
    state: Ints,
    stream: Words,
    pos: int,
) -> int:
    """The inverse of :func:`_encode_row`; returns the new bit position, or -1 if corrupt."""
    width = pix.shape[1]
    start = 0
    while True:
        grow = state[_WMIDX] < _WAITMASK_MAX and state[_WMILEFT] <= width - start
        end = start + state[_WMILEFT] if grow else width
        if end > start:
            waitmask = (1 << state[_WMIDX]) - 1
            i = start
            stopidx = i + state[_WAITCNT]
            run_index = 0
            ended_in_run = False
            while i < end:
                if (
                    row > 0
                    and i > 2
                    and run_index != i
                    and _same(pix, row - 1, i - 1, row - 1, i, first, count)
                    and _same(pix, row, i - 1, row, i - 2, first, count)
                ):
                    run_index = i
                    state[_WAITCNT] = stopidx - i
                    run = 0
                    while _peek(stream, pos) & 0x80000000:
                        pos += 1
                        run += state[_MELCORDER]
                        if state[_MELCSTATE] < 31:
                            state[_MELCSTATE] += 1
                            state[_MELCLEN] = _MELC_ORDER[state[_MELCSTATE]]
                            state[_MELCORDER] = 1 << state[_MELCLEN]
                        if pos > stream.shape[0] * 32:
                            return -1
                    pos += 1
                    if state[_MELCLEN] > 0:
                        run += _peek(stream, pos) >> (32 - state[_MELCLEN])
                        pos += state[_MELCLEN]
                    if state[_MELCSTATE] > 0:
                        state[_MELCSTATE] -= 1
                        state[_MELCLEN] = _MELC_ORDER[state[_MELCSTATE]]
                        state[_MELCORDER] = 1 << state[_MELCLEN]
                    if run > end - i:
                        return -1
                    for _ in range(run):
                        for c in range(first, first + count):
                            pix[row, i, _CHANNEL_BYTE[c]] = pix[row, i - 1, _CHANNEL_BYTE[c]]
                        i += 1
                    if i == end:
                        ended_in_run = True
                        break
                    stopidx = i + state[_WAITCNT]
                    continue

                for c in range(first, first + count):
                    byte = _CHANNEL_BYTE[c]
                    k = bestcode[c, _BUCKET[errors[c, i]]]
                    value, pos = _read_value(stream, pos, k)
                    if value > 0xFF:
                        return -1
                    errors[c, i + 1] = value
                    pix[row, i, byte] = (_UNFOLD[value] + _predict(pix, row, i, byte)) & 0xFF
                if i == 0:
                    if state[_WAITCNT] > 0:
                        state[_WAITCNT] -= 1
                    else:
                        state[_SEED] += 1
                        state[_WAITCNT] = _CHAOS[state[_SEED] & 0xFF] & waitmask
                        for c in range(first, first + count):
                            _update_model(
                                counters, bestcode, c, errors[c, 0], errors[c, 1], state[_TRIG]
                            )
                    i = 1
                    stopidx = 1 + state[_WAITCNT]
                elif i == stopidx:
                    for c in range(first, first + count):
                        _update_model(
                            counters, bestcode, c, errors[c, i], errors[c, i + 1], state[_TRIG]
                        )
                    i += 1
                    state[_SEED] += 1
                    stopidx = i + (_CHAOS[state[_SEED] & 0xFF] & waitmask)
                else:
                    i += 1
            if not ended_in_run:
                state[_WAITCNT] = stopidx - end
        if not grow:
            if state[_WMIDX] < _WAITMASK_MAX:
                state[_WMILEFT] -= width - start
            break
        state[_WMIDX] += 1
        state[_TRIG] = _TRIGGER[min(state[_WMIDX], 10)]
        state[_WMILEFT] = _WAIT_NEXT
        start = end
    return pos


@_jit
def _decode(stream: Words, pix: Pixels, alpha: bool) -> bool:
    height, width = pix.shape[0], pix.shape[1]
    counters = np.zeros((4, _BUCKETS, _BPC), np.int64)
    bestcode = np.full((4, _BUCKETS), _BPC - 1, np.int64)
    errors = np.zeros((4, width + 1), np.int64)
    states = np.zeros((2, _STATE_FIELDS), np.int64)
    _new_state(states[0])
    _new_state(states[1])
    pos = 5 * 32
    for row in range(height):
        for c in range(4):
            errors[c, 0] = 0 if row == 0 else errors[c, 1]
        pos = _decode_row(
            pix, row, _RGB, _RGB_COMPONENTS, counters, bestcode, errors, states[0], stream, pos
        )
        if pos < 0:
            return False
        if alpha:
            pos = _decode_row(
                pix, row, _ALPHA, 1, counters, bestcode, errors, states[1], stream, pos
            )
            if pos < 0:
                return False
        if pos > stream.shape[0] * 32:
            return False
    return True


#: quic.c's SPICE_MAX_IMAGE_SIZE: larger headers are refused before allocating.
MAX_PIXELS: Final = 512 * 1024 * 1024 - 1


def decode_quic(data: bytes) -> Pixels:
    """Pixels ``(height, width, 4)`` B,G,R,X (X = 0) or B,G,R,A from a QUIC stream of type
    RGB32, RGB24 or RGBA; ``ValueError`` if it is not one or is corrupt."""
    if len(data) < HEADER.size or len(data) % 4:
        raise ValueError(f"a QUIC stream is whole 32-bit words, at least 5; got {len(data)} bytes")
    magic, version, kind, width, height = HEADER.unpack_from(data)
    if magic != QUIC_MAGIC or version != QUIC_VERSION:
        raise ValueError(f"not a QUIC stream (magic {magic:#x}, version {version:#x})")
    if kind not in (QuicImageType.RGB24, QuicImageType.RGB32, QuicImageType.RGBA):
        raise ValueError(f"unsupported QUIC image type {kind}")
    if not 0 < width < 2**31 or not 0 < height < 2**31 or width * height > MAX_PIXELS:
        raise ValueError(f"bad QUIC image size {width}x{height}")
    stream = np.frombuffer(data, "<u4").astype(np.uint32)
    pix = np.zeros((height, width, 4), np.uint8)
    if not _decode(stream, pix, kind == QuicImageType.RGBA):
        raise ValueError("corrupt QUIC stream")
    return pix


def warm_up() -> None:
    """Compile (or load from numba's cache) the encoders, so a first frame does not wait."""
    tiny = np.zeros((3, 5, 4), np.uint8)
    tiny[1, 2] = 7
    encode_quic_rgb32(tiny)
    encode_quic_rgba(tiny)
