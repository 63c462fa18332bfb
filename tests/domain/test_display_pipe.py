"""The per-client display pipe's rules (the machine-level convergence property is in
test_display_machine.py)."""

from __future__ import annotations

from spice.domain.display.pipe import (
    CopyBits,
    CreatePrimary,
    Damage,
    DestroyPrimary,
    DisplayPipe,
    Fill,
    Mark,
    MonitorsConfig,
)
from spice.domain.geometry import Box


def test_new_primary_sequence_is_create_draw_monitors_mark() -> None:
    pipe = DisplayPipe()
    pipe.new_primary(8, 4, replace=True)
    assert list(pipe) == [
        DestroyPrimary(),
        CreatePrimary(8, 4),
        Damage(Box(0, 0, 8, 4)),
        MonitorsConfig((Box(0, 0, 8, 4),)),
        Mark(),
    ]


def test_new_primary_with_heads_carries_them() -> None:
    pipe = DisplayPipe()
    heads = (Box(0, 0, 4, 4), Box(4, 0, 4, 4))
    pipe.new_primary(8, 4, replace=False, heads=heads)
    assert MonitorsConfig(heads) in list(pipe)


def test_newer_monitor_layout_supersedes_a_pending_one() -> None:
    pipe = DisplayPipe()
    pipe.new_primary(8, 4, replace=False)
    for x in range(100):
        pipe.monitors((Box(0, 0, 4, 4), Box(4, 0, x % 4 + 1, 4)))
    layouts = [op for op in pipe if isinstance(op, MonitorsConfig)]
    assert layouts == [MonitorsConfig((Box(0, 0, 4, 4), Box(4, 0, 4, 4)))]
    assert isinstance(list(pipe)[-1], MonitorsConfig)


def test_copy_bits_behind_pending_damage_becomes_damage() -> None:
    pipe = DisplayPipe()
    pipe.damage(Box(0, 0, 4, 4))
    pipe.copy_bits(0, 0, Box(0, 2, 4, 2))
    assert list(pipe) == [Damage(Box(0, 0, 4, 4)), Damage(Box(0, 2, 4, 2))]
    pipe2 = DisplayPipe()
    pipe2.fill(Box(0, 0, 2, 2), 5)
    pipe2.copy_bits(0, 0, Box(0, 2, 4, 2))
    assert list(pipe2) == [Fill(Box(0, 0, 2, 2), 5), CopyBits(0, 0, Box(0, 2, 4, 2))]


def test_damage_in_flight_also_blocks_copy_bits() -> None:
    pipe = DisplayPipe()
    pipe.damage(Box(0, 0, 4, 4))
    assert pipe.pop() == Damage(Box(0, 0, 4, 4))
    pipe.copy_bits(0, 0, Box(0, 1, 4, 2))
    assert list(pipe) == [Damage(Box(0, 1, 4, 2))]
    pipe.done()


def test_pipe_is_bounded_when_the_client_never_reads() -> None:
    pipe = DisplayPipe(limit=50)
    for i in range(10_000):
        pipe.fill(Box(i % 100, i % 37, 3, 3), i)
        pipe.damage(Box(i % 90, 0, 5, 5))
    assert len(pipe) <= 51
    assert pipe.collapses > 0


def test_fills_beside_the_job_out_and_everything_ahead_overtake_it() -> None:
    pipe = DisplayPipe()
    job_area = Box(0, 0, 100, 100)
    pipe.damage(Box(200, 0, 50, 50))  # queued drawing
    pipe.fill(Box(400, 0, 10, 10), 1)  # beside everything: may go now
    pipe.fill(Box(210, 10, 5, 5), 2)  # on the queued damage: must wait for it
    pipe.fill(Box(50, 50, 10, 10), 3)  # on the job's area: must wait for the job
    pipe.fill(Box(500, 0, 10, 10), 4)  # beside everything: may go now
    taken = pipe.take_fills_ahead([job_area])
    assert [f.color for f in taken] == [1, 4]
    left = list(pipe)
    assert [type(op).__name__ for op in left] == ["Damage", "Fill", "Fill"]
    assert [op.color for op in left if isinstance(op, Fill)] == [2, 3]


def test_no_fill_overtakes_a_copy_or_a_surface_change() -> None:
    pipe = DisplayPipe()
    pipe.copy_bits(0, 0, Box(300, 300, 10, 10))
    pipe.fill(Box(400, 0, 10, 10), 1)
    assert pipe.take_fills_ahead([Box(0, 0, 10, 10)]) == []
    pipe = DisplayPipe()
    pipe.destroy_primary()
    pipe.fill(Box(400, 0, 10, 10), 1)
    assert pipe.take_fills_ahead([]) == []
    assert len(pipe) == 2
