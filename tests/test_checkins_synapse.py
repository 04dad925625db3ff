"""Check-ins through a real Synapse: posted into the encrypted tandem room and decrypted by a
mayor's client, a ✅ reaction (encrypted) recorded, 🆘 alerting the coordination room, the
report listing it, and the CSV arriving as an encrypted file that parses."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest
from nio import DownloadError, RoomEncryptedFile
from nio.crypto.attachments import decrypt_attachment

from tests.matrix_fixtures import WAIT, assert_answers
from tests.test_tandems_synapse import community

pytestmark = pytest.mark.synapse


async def eventually(check, timeout: float = WAIT):
    """Wait until ``check()`` (a coroutine function) returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.2)


async def react(user, room_id: str, event_id: str, key: str) -> str:
    content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
    response = await user.client.room_send(room_id, "m.reaction", content, ignore_unverified_devices=True)
    return response.event_id


async def test_checkin_in_an_encrypted_tandem_room_answered_by_reaction(make_bot, make_user):
    bot, coordinator, mayors, chats = await community(
        make_bot, make_user, {"Wittenberge": "anna", "Bad Berleburg": "ben"}
    )
    anna, ben = mayors["Wittenberge"], mayors["Bad Berleburg"]
    # the coordination room, where alerts go
    coordination = await coordinator.create_room(
        [bot.user_id], encrypted=True, direct=False, name="Koordination"
    )
    await coordinator.wait_joined(coordination, bot.user_id)
    bot.settings.coordination_room = coordination

    own = chats[coordinator.user_id]
    await coordinator.ask(own, f"!tandem anlegen {anna.user_id} {ben.user_id} Innenstadt", timeout=60)
    room = (await bot.bot.db.fetchone("SELECT room_id FROM tandems"))["room_id"]
    for person in (anna, ben):
        await person.join(room)
    await anna.wait_notice(room, lambda e: e.sender == bot.user_id)  # the welcome

    # a rhythm in words, shown back with the next date
    shown = await anna.ask(room, "!checkin rhythmus monatlich am ersten Montag 9:30")
    assert "ersten Montag" in shown.body and "09:30" in shown.body

    # the coordinator asks now, by number from the direct chat; the mayors' clients decrypt it
    command = await coordinator.send(own, "!checkin jetzt 1")
    confirmation = await coordinator.wait_reply(own, command)
    assert_answers(confirmation, command, coordinator.user_id)
    checkin = await anna.wait_notice(
        room, lambda e: e.sender == bot.user_id and "Wie läuft der Austausch" in e.body
    )
    assert checkin.decrypted
    assert "Wittenberge" in checkin.body and "Bad Berleburg" in checkin.body
    content = checkin.source["content"]
    assert set(content["m.mentions"]["user_ids"]) == {anna.user_id, ben.user_id}
    assert content["msgtype"] == "m.notice" and "<li>" in content["formatted_body"]

    # ✅ from Anna (an encrypted reaction) is recorded for her
    reaction = await react(anna, room, checkin.event_id, "✅")

    async def recorded():
        return await bot.bot.db.fetchall(
            "SELECT user_id, answer FROM checkin_answers WHERE source_event_id = ?", (reaction,)
        )

    assert [tuple(r) for r in await eventually(recorded)] == [(anna.user_id, "done")]

    # 🆘 from Ben alerts the coordination room with a link to the tandem room
    await react(ben, room, checkin.event_id, "🆘")
    alert = await coordinator.wait_notice(coordination, lambda e: e.sender == bot.user_id and "🆘" in e.body)
    assert (
        "Wittenberge" in alert.body
        and f"https://matrix.to/#/{room}" in alert.source["content"]["formatted_body"]
    )

    # the report lists the tandem with the help flag
    report = await coordinator.ask(own, "!checkin bericht")
    assert "Wittenberge ⇄ Bad Berleburg" in report.body and "🆘" in report.body

    # the CSV in the encrypted coordination room arrives as an encrypted file and parses
    files: list[RoomEncryptedFile] = []

    async def on_file(room_obj, event) -> None:
        if room_obj.room_id == coordination and event.sender == bot.user_id:
            files.append(event)

    coordinator.client.add_event_callback(on_file, RoomEncryptedFile)
    await coordinator.send(coordination, "!checkin bericht csv")

    async def arrived():
        return files

    [upload] = await eventually(arrived)
    downloaded = await coordinator.client.download(upload.url)
    assert not isinstance(downloaded, DownloadError), downloaded
    plain = decrypt_attachment(downloaded.body, upload.key["k"], upload.hashes["sha256"], upload.iv)
    rows = list(csv.reader(io.StringIO(plain.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][1] == "Stadt A" and rows[1][1] == "Wittenberge" and rows[1][2] == "Bad Berleburg"
    assert rows[1][-1] == "1"  # help requested
