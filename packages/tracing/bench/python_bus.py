"""The anchor's EventBus design, for the events benchmark's baseline (b).

deque + threading.Event set on every publish + one daemon drain thread that pops and dispatches
to subscriber callbacks (LMCache lmcache/v1/mp_observability/event_bus.py). Prints one JSON line.
usage: python3 python_bus.py PRODUCERS EVENTS_TOTAL
"""
import collections
import json
import sys
import threading
import time
from dataclasses import dataclass, field

SESSION_ID = "3f2b8c1e-5d4a-4e6b-9a7c-0123456789ab"
MODEL_NAME = "meta-llama/Llama-3.1-8B"


@dataclass
class Event:
    event_type: str
    session_id: str
    metadata: dict = field(default_factory=dict)
    timestamp: float = 0.0


class EventBus:
    def __init__(self, max_queue_size=10_000_000):
        self._queue = collections.deque()
        self._wake = threading.Event()
        self._subs = collections.defaultdict(list)
        self._stop = False
        self._max = max_queue_size
        self.discarded = 0
        self._thread = threading.Thread(target=self._run, name="EventBus", daemon=True)

    def subscribe(self, etype, cb):
        self._subs[etype].append(cb)

    def start(self):
        self._thread.start()

    def publish(self, event):
        if len(self._queue) >= self._max:
            self.discarded += 1
            return
        event.timestamp = time.time()
        self._queue.append(event)
        self._wake.set()

    def _run(self):
        while not self._stop:
            self._wake.wait(timeout=0.1)
            self._wake.clear()
            self._drain()
        self._drain()

    def _drain(self):
        subs = dict(self._subs)
        q = self._queue
        while q:
            e = q.popleft()
            for cb in subs.get(e.event_type, ()):
                try:
                    cb(e)
                except Exception:
                    pass


def main():
    producers = int(sys.argv[1])
    total = int(sys.argv[2])
    per = total // producers
    bus = EventBus()
    done = threading.Event()
    state = {"n": 0, "sum": 0}

    def subscriber(e):
        state["n"] += 1
        state["sum"] += e.metadata["key_count"]
        if state["n"] == per * producers:
            done.set()

    bus.subscribe("l1.write.reserved", subscriber)
    bus.start()
    go = threading.Event()

    def produce():
        go.wait()
        for i in range(1, per + 1):
            bus.publish(Event("l1.write.reserved", SESSION_ID, {"key_count": i & 0xFF, "total_bytes": i * 4096, "model_name": MODEL_NAME}))

    threads = [threading.Thread(target=produce) for _ in range(producers)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    go.set()
    done.wait()
    elapsed = time.perf_counter() - t0
    for t in threads:
        t.join()
    print(json.dumps({"producers": producers, "events": per * producers, "seconds": elapsed, "delivered_per_s": per * producers / elapsed}))


if __name__ == "__main__":
    main()
