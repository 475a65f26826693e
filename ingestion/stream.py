"""The message stream: the fleet's readings with faults applied, in send order.

Accounting is exact: every reading consumes one slot of the caller's budget when it is emitted
or held back (late events), a retransmission consumes one more, and held messages come out
later (when the fleet clock passes their release time, or from `drain`). So a run asked for N
messages sends exactly N. Per car: its own fault rng, a ring of recently sent valid messages
(what retransmissions copy) and its held-back late readings.
"""
from __future__ import annotations

import heapq
import random
import time
from collections import deque
from typing import Callable

from ingestion.faults import (CLEAN, COURSE, FAULT_KINDS, LATE, RETRANSMIT, FaultContext, Tag,
                              course_shaped, late_delay_ms, make_fault)
from ingestion.simulator import Fleet

Message = tuple[bytes, "bytes | None", "Tag | None"]  # (key, value, tag); tag None = clean
RING_SIZE = 64


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class _CarFaults:
    __slots__ = ("rng", "ctx", "ring", "held", "last_course_sec")

    def __init__(self, rng: random.Random, ctx: FaultContext) -> None:
        self.rng, self.ctx = rng, ctx
        self.ring: deque[bytes] = deque(maxlen=RING_SIZE)
        self.held: list[tuple[int, int, bytes]] = []
        self.last_course_sec = -1


class MessageStream:
    """Messages of `fleet` with `rates` faults; `fill` appends to a list, `drain` ends a run."""

    def __init__(self, fleet: Fleet, rates: dict[str, float], seed: int, validation,
                 now_ms: Callable[[], int] = wall_clock_ms,
                 clock_guard: Callable[[], int] | None = None) -> None:
        unknown = set(rates) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        self.fleet = fleet
        self.pending = 0  # held late messages, already counted against the budget
        self._kinds: list[tuple[float, str]] = []
        total = 0.0
        for kind in FAULT_KINDS:
            if rates.get(kind, 0.0) > 0:
                total += rates[kind]
                self._kinds.append((total, kind))
        self._total = total
        self._faults = [_CarFaults(r, FaultContext(r, validation, now_ms)) for r in
                        (random.Random(f"{seed}:faults:{car.index}") for car in fleet.cars)]
        self._guard = clock_guard
        self._tick = self._pos = 0
        self._order = 0

    def fill(self, out: list[Message], budget: int) -> None:
        """Append messages consuming up to `budget` slots (stops early if the fleet clock
        would pass `clock_guard()`: the simulated time never runs ahead of the wall clock)."""
        cars, faults, fleet = self.fleet.cars, self._faults, self.fleet
        n, total, guard = len(cars), self._total, self._guard
        pos, tick = self._pos, self._tick
        while budget > 0:
            car = cars[pos]
            t_ms = fleet.time_ms(tick, car)
            if pos == 0 and guard is not None and t_ms > guard():
                break
            value = car.step(t_ms)
            state = faults[pos]
            if state.held and state.held[0][0] <= t_ms:
                self._release(car.key, state, t_ms, out)
            u = state.rng.random() if total else 1.0
            if u >= total:
                out.append((car.key, value, None))
                state.ring.append(value)
                budget -= 1
            else:
                budget -= self._fault(car.key, state, value, t_ms, u, out, budget)
            pos += 1
            if pos == n:
                pos, tick = 0, tick + 1
        self._pos, self._tick = pos, tick

    def drain(self, out: list[Message]) -> None:
        """Append every held message, by release time (the end of a run)."""
        held = []
        for car, state in zip(self.fleet.cars, self._faults):
            held.extend((release, order, car.key, value) for release, order, value in state.held)
            state.held.clear()
        for _, _, key, value in sorted(held):
            out.append((key, value, LATE))
        self.pending = 0

    def _release(self, key: bytes, state: _CarFaults, t_ms: int, out: list[Message]) -> None:
        while state.held and state.held[0][0] <= t_ms:
            value = heapq.heappop(state.held)[2]
            out.append((key, value, LATE))
            state.ring.append(value)
            self.pending -= 1

    def _fault(self, key: bytes, state: _CarFaults, value: bytes, t_ms: int, u: float,
               out: list[Message], budget: int) -> int:
        """Apply the fault kind `u` selects; returns the budget slots used."""
        kind = next(k for limit, k in self._kinds if u < limit)
        if kind == "late":
            self._order += 1
            heapq.heappush(state.held, (t_ms + late_delay_ms(state.rng), self._order, value))
            self.pending += 1
            return 1
        if kind == "course_shape" and t_ms // 1000 != state.last_course_sec:
            # one course event per car and second: its derived id (car, trip, second) is unique
            state.last_course_sec = t_ms // 1000
            value = course_shaped(value)
            out.append((key, value, COURSE))
            state.ring.append(value)
            return 1
        if kind in ("course_shape", "duplicate"):
            out.append((key, value, None))
            state.ring.append(value)
            if kind == "duplicate" and budget >= 2 and len(state.ring) >= 2:
                again = state.ring[state.rng.randrange(len(state.ring) - 1)]
                out.append((key, again, RETRANSMIT))
                return 2
            return 1
        faulty, tag = make_fault(kind, state.ctx, value)
        out.append((key, faulty, tag))
        return 1


def tag_of(message: Message) -> Tag:
    """The tag of a message (clean messages carry None for speed)."""
    return message[2] or CLEAN
