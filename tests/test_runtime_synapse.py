"""The Matrix runtime against a real Synapse, with a second client playing the user."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest

from tests.answer_checks import settle, wait_reply_or_say_why
from tests.matrix_fixtures import unique

pytestmark = pytest.mark.synapse


async def test_help_is_a_notice_replying_to_the_command(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    command_id = await mayor.send(room, "!hilfe")
    answer = await mayor.wait_reply(room, command_id)
    content = answer.source["content"]
    assert content["msgtype"] == "m.notice"
    assert content["format"] == "org.matrix.custom.html"
    assert "<code>!ping</code>" in content["formatted_body"]
    assert "!ping" in content["body"] and "<" not in content["body"].split("!hilfe <Befehl>")[0]
    assert content["m.relates_to"]["m.in_reply_to"]["event_id"] == command_id
    assert content["m.mentions"] == {"user_ids": [mayor.user_id]}


async def test_reply_in_a_thread_stays_in_the_thread(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    root = await mayor.send(room, "Thread-Anfang")
    command_id = await mayor.send(room, "!ping", thread_root=root)
    answer = await mayor.wait_reply(room, command_id)
    relates = answer.source["content"]["m.relates_to"]
    assert relates["rel_type"] == "m.thread" and relates["event_id"] == root


async def test_unknown_command_gets_a_suggestion(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    answer = await mayor.ask(room, "!pnig")
    assert "Meinten Sie !ping?" in answer.body


async def test_member_is_refused_a_coordinator_command(make_bot, make_user, synapse):
    coordinator = await make_user("koordination")
    bot = await make_bot(coordinators=[coordinator.user_id])
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    refused = await mayor.ask(room, "!status")
    assert "nur Koordinatorinnen und Koordinatoren" in refused.body
    own_room = await coordinator.dm(bot.user_id)
    allowed = await coordinator.ask(own_room, "!status")
    assert "Schemaversion" in allowed.body


async def test_power_level_in_coordination_room_makes_a_coordinator(make_bot, make_user, synapse):
    lead = await make_user("leitung")
    staff = await make_user("team")
    bot_account = synapse.register("koordbot")
    coordination = await lead.create_room(
        [staff.user_id, bot_account.user_id], direct=False, name="Koordination"
    )
    await staff.client.join(coordination)
    levels = (await lead.client.room_get_state_event(coordination, "m.room.power_levels")).content
    levels["users"][staff.user_id] = 50
    await lead.client.room_put_state(coordination, "m.room.power_levels", levels)
    bot = await make_bot(account=bot_account, coordination_room=coordination)
    room = await staff.dm(bot.user_id)
    answer = await staff.ask(room, "!status")
    assert "Schemaversion" in answer.body
    # taking the power level away takes the role away, without a restart
    levels["users"][staff.user_id] = 0
    await lead.client.room_put_state(coordination, "m.room.power_levels", levels)
    for _ in range(50):
        if bot.bot.client.rooms[coordination].power_levels.get_user_level(staff.user_id) == 0:
            break
        await asyncio.sleep(0.1)
    refused = await staff.ask(room, "!status")
    assert "nur Koordinatorinnen und Koordinatoren" in refused.body


async def test_html_in_an_argument_comes_back_escaped(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    answer = await mayor.ask(room, '!hilfe "<img src=x onerror=alert(1)>"')
    html = answer.source["content"]["formatted_body"]
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


async def test_restart_answers_no_command_twice(make_bot, make_user, tmp_path):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    first = await mayor.send(room, "!ping")
    await mayor.wait_reply(room, first)
    await bot.stop()
    again = await make_bot(account=bot.account)
    second = await mayor.send(room, "!ping")
    await mayor.wait_reply(room, second)
    await settle(mayor, room)  # a duplicate of either answer would come before the marker's
    assert len(mayor.replies_to(room, first)) == 1
    assert len(mayor.replies_to(room, second)) == 1
    assert again.bot.client.device_id == bot.bot.client.device_id  # one device for life


async def test_command_sent_while_down_is_answered_once_after_restart(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    await mayor.ask(room, "!ping")
    await bot.stop()
    while_down = await mayor.send(room, "!ping")
    await make_bot(account=bot.account)
    await mayor.wait_reply(room, while_down)
    await settle(mayor, room)
    assert len(mayor.replies_to(room, while_down)) == 1


async def test_old_commands_outside_the_window_are_ignored(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    await mayor.ask(room, "!ping")
    await bot.stop()
    stale = await mayor.send(room, "!ping")
    await asyncio.sleep(3.0)
    # a 1.5-second window makes the command sent 3 seconds ago too old
    await make_bot(account=bot.account, sync={"catch_up_minutes": 0.025})
    fresh = await mayor.send(room, "!ping")
    await mayor.wait_reply(room, fresh)
    assert mayor.replies_to(room, stale) == []


async def test_invite_from_a_server_not_allowed_is_rejected(make_bot, make_user):
    bot = await make_bot(allowed_servers=["example.org"])
    stranger = await make_user("fremd")
    room = await stranger.create_room([bot.user_id])
    for _ in range(100):
        members = await stranger.client.room_get_state_event(room, "m.room.member", bot.user_id)
        if members.content.get("membership") == "leave":
            break
        await asyncio.sleep(0.1)
    assert members.content["membership"] == "leave"


async def test_ping_in_an_encrypted_direct_chat_also_after_restart(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id, encrypted=True)
    command_id = await mayor.send(room, "!ping")
    answer = await mayor.wait_reply(room, command_id)
    assert answer.body.startswith("🏓 Pong!")
    assert answer.decrypted  # the bot answered encrypted
    await bot.stop()
    await make_bot(account=bot.account)
    after = await mayor.ask(room, "!ping")
    assert after.body.startswith("🏓 Pong!") and after.decrypted


async def test_undecryptable_message_is_reported_once_per_room(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    bogus = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "ciphertext": "AwgAEnB1bm5vdA",
        "sender_key": "x" * 43,
        "session_id": "nosuchsession",
        "device_id": mayor.client.device_id,
    }
    first = await mayor.client.room_send(room, "m.room.encrypted", bogus)
    notice = await mayor.wait_reply(room, first.event_id)
    assert "nicht entschlüsseln" in notice.body
    second = await mayor.client.room_send(room, "m.room.encrypted", dict(bogus, session_id="other"))
    answer = await mayor.ask(room, "!ping")  # the bot is alive and has seen the second one
    assert answer.body.startswith("🏓")
    assert mayor.replies_to(room, second.event_id) == []


async def test_first_message_sent_before_the_bot_joined_is_answered(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.create_room([bot.user_id])  # like Element: invite, then type at once
    answer = await mayor.ask(room, "!ping")
    assert answer.body.startswith("🏓")


async def test_history_from_before_the_invitation_is_not_answered(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.create_room([], direct=False, name="Alt")
    old = await mayor.send(room, "!ping")
    await asyncio.sleep(0.5)
    await mayor.client.room_invite(room, bot.user_id)
    await mayor.wait_joined(room, bot.user_id)
    fresh = await mayor.ask(room, "!ping")
    assert fresh.body.startswith("🏓")
    assert mayor.replies_to(room, old) == []


async def test_bot_leaves_a_room_nobody_else_is_in_when_configured(make_bot, make_user):
    bot = await make_bot(leave_empty_rooms=True)
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    await mayor.ask(room, "!ping")
    await mayor.client.room_leave(room)
    for _ in range(100):
        if room not in (await bot.bot.client.joined_rooms()).rooms:
            break
        await asyncio.sleep(0.1)
    assert room not in (await bot.bot.client.joined_rooms()).rooms


async def test_after_restart_the_bot_can_post_into_an_encrypted_room_no_sync_mentioned(make_bot, make_user):
    from commands.context import Reply

    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id, encrypted=True)
    await mayor.ask(room, "!ping")
    await bot.stop()
    again = await make_bot(account=bot.account)
    # a warm start fetches no full state; a sync that mentions the room (the bot's own profile
    # update, say) rebuilds it, so leave it out as no sync had mentioned it
    again.bot.client.rooms.pop(room, None)
    await again.bot.matrix.send(
        Reply("ping", {"version": "x", "uptime_seconds": 1}, room_id=room, key="announcement-test")
    )
    notice = await mayor.wait_notice(room, lambda e: "Pong" in e.body and "x," in e.body)
    assert notice.decrypted


async def test_after_restart_plain_text_is_answered_in_a_direct_chat_only(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    other = await make_user("nachbar")
    direct = await mayor.dm(bot.user_id)
    group = await mayor.create_room([bot.user_id, other.user_id], direct=False, name="Runde")
    await other.client.join(group)
    await mayor.wait_joined(group, bot.user_id)
    await bot.stop()
    await make_bot(account=bot.account)
    chatter = await mayor.send(group, "Guten Morgen zusammen")
    answer = await mayor.ask(direct, "Hallo")
    assert answer.body  # plain text in the direct chat is answered
    await mayor.ask(group, "!ping")  # the group batch after the chatter has been handled
    assert mayor.replies_to(group, chatter) == []


async def test_a_bot_that_lost_its_database_works_on_in_an_existing_encrypted_room(
    make_bot, make_user, tmp_path
):
    bot = await make_bot(data=tmp_path / "first")
    mayor = await make_user("mayor")
    quiet = await mayor.dm(bot.user_id, encrypted=True)  # no message yet
    await bot.stop()
    # new database and data folder: a fresh login, a new device, a cold first sync
    again = await make_bot(account=bot.account, data=tmp_path / "second")
    assert again.bot.client.device_id != bot.bot.client.device_id
    answer = await mayor.ask(quiet, "!ping")
    assert answer.body.startswith("🏓") and answer.decrypted


async def test_a_question_with_a_mention_in_a_group_room_is_answered(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    other = await make_user("nachbar")
    group = await mayor.create_room([bot.user_id, other.user_id], direct=False, name="Runde")
    await other.client.join(group)
    await mayor.wait_joined(group, bot.user_id)
    localpart = bot.user_id.split(":")[0].lstrip("@")
    event_id = await mayor.send(
        group,
        f"{localpart}: Wo sitzt die Akademie?",
        html=f'<a href="https://matrix.to/#/{bot.user_id}">{localpart}</a>: Wo sitzt die Akademie?',
    )
    answer = await mayor.wait_reply(group, event_id)
    assert "Wittenberge" in answer.body


@pytest.mark.parametrize("sliding", [True, False], ids=["sliding-sync-pages", "one-request-parts"])
async def test_a_first_sync_in_parts_answers_every_room_once_and_forgets_quiet_ones(
    make_bot, make_user, tmp_path, monkeypatch, sliding
):
    """A first start's first sync in parts: sliding-sync pages of one room each (the
    range growing on one connection position), or one request split into parts of one room
    (a homeserver without sliding sync)."""
    monkeypatch.setattr("bot.sync_loop.ROOMS_PER_PAGE", 1)  # every room its own page ...
    monkeypatch.setattr("bot.sync_loop.ROOMS_PER_PART", 1)  # ... or part
    import bot.sync_loop as sync_loop

    pages: list[int] = []
    real_page = sync_loop.fetch_sliding_page

    async def counted_page(client, body, position):
        pages.append(body["lists"]["rooms"]["ranges"][0][1])
        return await real_page(client, body, position)

    monkeypatch.setattr("bot.sync_loop.fetch_sliding_page", counted_page)
    bot = await make_bot(data=tmp_path / "first")
    mayor = await make_user("mayor")
    rooms = [await mayor.dm(bot.user_id) for _ in range(3)]
    quiet = await mayor.dm(bot.user_id, encrypted=True)  # no message before the restart
    await bot.stop()
    commands = [await mayor.send(room, "!ping") for room in rooms]
    pages.clear()  # the first bot's own first start
    # a new database and data folder: a new device whose first sync comes in a part per room
    again = await make_bot(
        account=bot.account, data=tmp_path / "second", sync={"sliding_first_sync": sliding}
    )
    for room, command in zip(rooms, commands, strict=True):
        await mayor.wait_reply(room, command)
    assert again.bot.sync.behind is not None  # a first start: the first sync came behind
    await asyncio.wait_for(again.bot.sync.behind, 30)
    # the range grew a room at a time, to every room (the academy's Space among them)
    assert pages == (list(range(len(again.bot.membership))) if sliding else [])
    assert len(again.bot.membership) >= 4
    # nio keeps the rooms with something to handle, from every part (with the members the sync
    # gave), and forgets the others
    assert all(mayor.user_id in again.bot.client.rooms[room].users for room in rooms)
    assert quiet not in again.bot.client.rooms
    answer = await mayor.ask(quiet, "!ping")  # the forgotten room is rebuilt, still encrypted
    assert answer.body.startswith("🏓") and answer.decrypted
    for room in rooms:
        await settle(mayor, room)
    assert [len(mayor.replies_to(room, command)) for room, command in zip(rooms, commands, strict=True)] == [
        1,
        1,
        1,
    ]


async def test_a_clean_stop_between_the_first_syncs_pages_is_resumed_by_the_next_start(
    make_bot, make_user, tmp_path, monkeypatch, caplog
):
    """A first start stopped cleanly between its sliding-sync pages keeps where it stood: the
    next start syncs on from the live syncs' token instead of beginning the first start anew,
    and takes the remaining pages from the stored connection position (the rooms handed on
    before are not sent again). Every waiting command is answered once across both processes;
    once the last page's backlog is answered the token is stored and the progress is gone. The
    next start is a restart for the live syncs: its remaining pages wait until the commands its
    first live sync brings are answered."""
    import bot.sync_loop as sync_loop
    from storage.database import Database

    caplog.set_level(logging.INFO, logger="bot.runtime")
    monkeypatch.setattr("bot.sync_loop.ROOMS_PER_PAGE", 1)  # every room its own page
    real_page = sync_loop.fetch_sliding_page
    pages: list[tuple[int, str | None]] = []
    asked_ms: list[int] = []  # when each page was asked for (the homeserver's clock is this one)
    hold_from: list[int] = []  # the page (last room of the range) from which pages are held
    held = asyncio.Event()

    async def page(client, body, position):
        end = body["lists"]["rooms"]["ranges"][0][1]
        pages.append((end, position))
        asked_ms.append(int(time.time() * 1000))
        if hold_from and end >= hold_from[0]:
            held.set()
            await asyncio.Event().wait()  # still "on its way" when the stop comes
        return await real_page(client, body, position)

    monkeypatch.setattr("bot.sync_loop.fetch_sliding_page", page)
    first = await make_bot(data=tmp_path / "first")
    mayor = await make_user("mayor")
    rooms = [await mayor.dm(first.user_id) for _ in range(4)]
    await first.stop()
    waiting = {room: [await mayor.send(room, "!ping") for _ in range(3)] for room in rooms}
    pages.clear()
    hold_from.append(2)  # two pages go through, the third is held
    second = await make_bot(account=first.account, data=tmp_path / "second")
    await asyncio.wait_for(held.wait(), 30)
    await second.stop()

    async def stored() -> tuple[Any, Any, set[str]]:  # progress, token, handled events
        db = await Database(second.settings.database).open(migrate=False)
        try:
            row = await db.fetchone("SELECT value FROM bot_state WHERE key = 'first_sync_progress'")
            token = await db.fetchone("SELECT value FROM bot_state WHERE key = 'sync_token'")
            handled = {r[0] for r in await db.fetchall("SELECT event_id FROM handled_events")}
        finally:
            await db.close()
        return row, token, handled

    row, token, handled = await stored()
    assert token is None  # the backlog of the rooms not paged yet is not answered
    progress = json.loads(row[0])
    assert progress["end"] == 1  # the last room handed on: the second page's
    assert progress["position"] is not None and progress["position"] == pages[2][1]
    # the two rooms of those pages were answered before the stop, wholly; the others not at all
    answered_before = [room for room in rooms if set(waiting[room]) & handled]
    assert len(answered_before) == 2
    assert all(set(waiting[room]) <= handled for room in answered_before)

    # The next start is a restart for the live syncs: the command its first live sync brings
    # is answered before the homeserver is asked for the next page. Stopped again before that
    # page is back, it keeps the same progress.
    late = await mayor.send(answered_before[0], "!ping")  # a room paged before the stop
    pages.clear()
    asked_ms.clear()
    held.clear()
    third = await make_bot(account=first.account, data=tmp_path / "second")
    await asyncio.wait_for(held.wait(), 30)
    assert third.bot.sync.resumed is not None
    assert "the first start goes on after room 2" in caplog.text
    reply = await mayor.wait_reply(answered_before[0], late)
    assert reply.server_timestamp <= asked_ms[0]
    assert pages == [(2, progress["position"])]  # from the stored position, with the third room
    await third.stop()
    row, token, _ = await stored()
    kept = json.loads(row[0])
    assert token is None and (kept["position"], kept["end"]) == (progress["position"], 1)
    assert kept["live_token"] != progress["live_token"]  # the live syncs went on meanwhile

    pages.clear()
    hold_from.clear()
    fourth = await make_bot(account=first.account, data=tmp_path / "second")
    await asyncio.wait_for(fourth.bot.sync.behind, 60)
    assert fourth.bot.sync.resumed is not None
    # the pages went on from the stored position with the third room, to the last one
    assert pages[0] == (2, progress["position"])
    assert [end for end, _ in pages] == list(range(2, len(fourth.bot.membership)))
    for room in rooms:
        for command in waiting[room]:
            await wait_reply_or_say_why(mayor, room, command, fourth.bot)
        await settle(mayor, room)
        assert [len(mayor.replies_to(room, command)) for command in waiting[room]] == [1, 1, 1]
    await settle(mayor, answered_before[0])
    assert len(mayor.replies_to(answered_before[0], late)) == 1
    assert await fourth.bot.repo.sync_token() is not None
    assert await fourth.bot.repo.take_first_sync_progress() is None


async def test_sliding_sync_gone_between_the_pages_starts_them_over_and_falls_back_to_one_request(
    make_bot, make_user, tmp_path, monkeypatch
):
    """A homeserver that stops answering sliding sync between the pages (an upgrade, a proxy
    in front of it): the pages start over without a position, and when that is not answered
    either, the first sync comes in one request. Every waiting command is answered once."""
    import bot.sync_loop as sync_loop

    monkeypatch.setattr("bot.sync_loop.ROOMS_PER_PAGE", 1)
    real_page = sync_loop.fetch_sliding_page
    asked: list[str | None] = []

    async def page(client, body, position):
        asked.append(position)
        if len(asked) > 1:
            return None  # as for 404 or M_UNRECOGNIZED
        return await real_page(client, body, position)

    first = await make_bot(data=tmp_path / "first")
    mayor = await make_user("mayor")
    rooms = [await mayor.dm(first.user_id) for _ in range(3)]
    await first.stop()
    waiting = {room: await mayor.send(room, "!ping") for room in rooms}
    monkeypatch.setattr("bot.sync_loop.fetch_sliding_page", page)
    again = await make_bot(account=first.account, data=tmp_path / "second")
    await asyncio.wait_for(again.bot.sync.behind, 60)
    assert len(asked) == 3 and asked[0] is None and asked[1] is not None and asked[2] is None
    for room, command in waiting.items():
        await wait_reply_or_say_why(mayor, room, command, again.bot)
        await settle(mayor, room)
        assert len(mayor.replies_to(room, command)) == 1
    assert await again.bot.repo.sync_token() is not None


@pytest.mark.parametrize("sliding", [True, False], ids=["sliding-sync-pages", "one-request"])
async def test_a_change_of_the_bots_name_is_no_new_join_for_a_first_start(
    make_bot, make_user, synapse, tmp_path, sliding
):
    """A change of the bot's display name writes a join→join member event into every room it
    is in, later than the commands waiting there. A first start (a lost database) must not take
    it for the bot's join and drop those commands as history: they are answered, once. Thirty
    of them, so the first sync's timeline no longer reaches back to the bot's invitation."""
    from nio import AsyncClient, ProfileSetDisplayNameResponse

    first = await make_bot(data=tmp_path / "first")
    mayor = await make_user("mayor")
    room = await mayor.dm(first.user_id)
    await first.stop()
    waiting = [await mayor.send(room, "!ping") for _ in range(30)]
    profile = AsyncClient(synapse.url, first.user_id)
    profile.access_token, profile.user_id = first.account.access_token, first.user_id
    try:
        response = await profile.set_displayname(unique("Kleinstadtakademie "))
        assert isinstance(response, ProfileSetDisplayNameResponse), response
    finally:
        await profile.close()
    # the room's state now says the bot "joined" after the waiting commands
    again = await make_bot(
        account=first.account,
        data=tmp_path / "second",
        sync={"sliding_first_sync": sliding},
        rate_limit={"commands": 100},  # one mayor's thirty commands
    )
    for command in waiting:
        await wait_reply_or_say_why(mayor, room, command, again.bot)
    await settle(mayor, room)
    assert [len(mayor.replies_to(room, command)) for command in waiting] == [1] * 30


async def test_a_first_sync_refused_by_the_homeserver_is_an_error_not_a_crash(synapse):
    from nio import AsyncClient, SyncError

    from bot.initial_sync import fetch_initial_sync
    from bot.sync_loop import sync_filter

    client = AsyncClient(synapse.url, "@nobody:localhost")
    client.access_token = "not-a-token"
    try:
        result = await fetch_initial_sync(client, sync_filter(5, initial=True))
    finally:
        await client.close()
    assert isinstance(result, SyncError) and result.status_code == "M_UNKNOWN_TOKEN"


async def test_the_bots_own_id_inside_a_command_reaches_the_refusal_for_the_bot(make_bot, make_user):
    """Element writes a pill for the bot into the body and ``m.mentions``; only a leading
    mention is cut off, so the tandem command sees both IDs and refuses the bot by name."""
    coordinator = await make_user("koordination")
    mayor = await make_user("mayor")
    bot = await make_bot(coordinators=[coordinator.user_id])
    room = await coordinator.dm(bot.user_id)
    body = f"!tandem anlegen {mayor.user_id} {bot.user_id} Wohnen"
    pill = f'<a href="https://matrix.to/#/{bot.user_id}">{bot.user_id}</a>'
    content = {
        "msgtype": "m.text",
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": f"!tandem anlegen {mayor.user_id} {pill} Wohnen",
        "m.mentions": {"user_ids": [bot.user_id]},
    }
    sent = await coordinator.client.room_send(room, "m.room.message", content)
    answer = await coordinator.wait_reply(room, sent.event_id)
    assert "Bot selbst" in answer.body, answer.body


async def test_a_first_start_answers_new_commands_before_its_first_sync_is_back(
    make_bot, make_user, tmp_path, monkeypatch, caplog
):
    """A new device in rooms the bot was in before (a lost database): it asks the homeserver
    where it stands, without the rooms, and answers from there while the first sync (every
    room's state and the commands that waited) is held back here. A command in an encrypted
    direct chat is answered encrypted though nio has not seen the room's state; no token is
    stored before the first sync's backlog is answered. Then the thirty waiting commands are
    answered, each once, and nothing is answered twice."""
    import bot.sync_loop
    from tests.answer_checks import answered

    caplog.set_level(logging.INFO)  # a failure shows the bot's own account of the start
    real_page = bot.sync_loop.fetch_sliding_page
    may_sync, asked = asyncio.Event(), asyncio.Event()

    async def held_page(client, body, position):  # the first sync's pages (sliding sync)
        asked.set()
        await may_sync.wait()
        return await real_page(client, body, position)

    first = await make_bot(data=tmp_path / "first")
    mayors = [await make_user("mayor") for _ in range(3)]  # each under the per-user rate limit
    mayor = mayors[0]
    secret = await mayor.dm(first.user_id, encrypted=True)  # no message before the restart
    group = await mayor.create_room([first.user_id, *(m.user_id for m in mayors[1:])], direct=False)
    for other in mayors[1:]:
        await other.client.join(group)
    await mayor.wait_joined(group, first.user_id)
    await first.stop()
    waiting = [await mayors[n % 3].send(group, "!ping") for n in range(30)]
    monkeypatch.setattr(bot.sync_loop, "fetch_sliding_page", held_page)
    again = await make_bot(account=first.account, data=tmp_path / "second")
    await asyncio.wait_for(asked.wait(), 30)

    new = await mayor.send(secret, "!ping")
    answer = await mayor.wait_reply(secret, new)
    assert answer.body.startswith("🏓") and answer.decrypted
    assert not may_sync.is_set() and answered(mayor, group, again.user_id, waiting) == []
    assert await again.bot.repo.sync_token() is None  # the backlog is not answered yet

    may_sync.set()
    # the first sync of every room, and its backlog, handled (slow on a loaded machine)
    await asyncio.wait_for(again.bot.sync.behind, 90)
    for command in waiting:
        await wait_reply_or_say_why(mayor, group, command, again.bot)
    assert await again.bot.repo.sync_token() is not None
    await settle(mayor, secret)
    await settle(mayors[1], group)
    assert answered(mayor, group, again.user_id, waiting) == waiting  # each once, in order
    assert len(mayor.replies_to(secret, new)) == 1  # the first sync showed it again: not answered
