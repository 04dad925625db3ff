"""The pace of paced sends (``bot.sending.SendPace``) on a fake clock: unpaced until the
homeserver refuses, then every paced send waits (not just the refused one), the interval learnt
from the refusal, and back to full speed with successes. Against a simulated Synapse limiter
(leaky bucket, 0.2 events/s, burst 10, half a second's pause before a 429, retried by the client
after retry_after_ms as nio does), sends run close to the allowed rate."""

from __future__ import annotations

import asyncio

from bot.sending import SendPace, edit_content, event_bytes


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


async def test_unpaced_until_refused_then_every_paced_send_waits_and_successes_bring_it_back():
    t = FakeTime()
    pace = SendPace(t.clock, t.sleep)
    for _ in range(5):
        await pace.turn()
    assert t.now == 1000.0 and pace.interval == 0.0
    pace.succeeded(True)
    t.now += 0.2
    pace.refused(4800)  # the homeserver allows the next event in 4.8 s
    assert pace.refusals == 1 and 4.8 <= pace.interval <= 5.2
    # the refused request is retried by nio after 4.8 s; the next paced send goes one interval later
    start = t.now
    await pace.turn()
    assert t.now - start >= 4.8 + pace.interval - 1e-9
    before = t.now
    await pace.turn()
    assert t.now - before >= pace.interval * 0.99  # every paced send keeps the distance
    # more refusals of the same wave hold the sends but do not inflate the interval
    pace.refused(3000)
    interval = pace.interval
    pace.refused(3000)
    pace.refused(2900)
    assert pace.interval == interval
    # successes shorten it; ten in a row without a refusal mean the limit is gone: full speed
    # again within 30 sends
    for _ in range(30):
        pace.succeeded(True)
    assert pace.interval == 0.0
    # unpaced sends (a command's answer) do not shorten it
    pace.refused(5000)
    kept = pace.interval
    pace.succeeded(False)
    assert pace.interval == kept


async def test_against_a_synapse_like_limiter_the_sends_keep_near_the_allowed_rate():
    t = FakeTime()
    pace = SendPace(t.clock, t.sleep)
    rate, burst, pause = 0.2, 10, 0.5
    bucket = {"count": 0.0, "start": t.now}
    accepted: list[float] = []

    async def homeserver() -> float | None:
        """None when accepted, else retry_after in seconds (as Synapse's Ratelimiter)."""
        now = t.now
        performed = bucket["count"] - (now - bucket["start"]) * rate
        if performed < 0:
            bucket.update(count=0.0, start=now)
            performed = 0
        if performed > burst - 1:
            allowed = bucket["start"] + (bucket["count"] - burst + 1) / rate
            await t.sleep(pause)
            return allowed - now
        bucket["count"] += 1
        accepted.append(now)
        await t.sleep(0.02)
        return None

    async def paced_send() -> None:
        await pace.turn()
        while (wait := await homeserver()) is not None:
            pace.refused(int(wait * 1000))
            await t.sleep(wait)  # nio's own retry
        pace.succeeded(True)

    started = t.now
    for _ in range(60):  # one worker at a time keeps the fake clock simple
        await paced_send()
    elapsed = t.now - started
    minimum = (60 - burst) / rate
    assert len(accepted) == 60
    assert minimum / elapsed > 0.9, (minimum, elapsed)
    assert pace.refusals < 40


def test_an_edit_replaces_the_event_with_a_fallback_for_older_clients():
    content = {"msgtype": "m.notice", "body": "neu", "format": "org.matrix.custom.html",
               "formatted_body": "<p>neu</p>", "m.mentions": {}}  # fmt: skip
    edit = edit_content(content, "$original")
    assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$original"}
    assert edit["m.new_content"] == content
    assert edit["body"] == "* neu" and edit["formatted_body"] == "* <p>neu</p>"


def test_event_size_counts_the_encrypted_form():
    small = event_bytes({"body": "x"})
    text = "ä" * 10_000  # two bytes in UTF-8, six as \\u00e4 in the JSON nio encrypts
    big = event_bytes({"body": text})
    assert big > 6 * 10_000 * 4 / 3 > 65_536 > small
