"""Coordinator commands through a real Synapse, with the role read from the coordination room's
power levels: ``!zentralort`` changes what every mayor is told, ``!neuladen`` swaps content in
only when it is free of problems, and taking the power level away takes the command away."""

from __future__ import annotations

import re
import shutil

import pytest

from commands.faq_search import load_library
from config.content import CONTENT_DIR
from tests.matrix_fixtures import assert_answers, unique

pytestmark = pytest.mark.synapse

HALLENBERG = "05958020"  # 4,367 inhabitants, in no Gemeindeverband: the central-place function decides


async def coordination(make_bot, make_user, synapse, **settings):
    """A coordination room made by the lead, where staff holds power level 50, and a bot that
    reads roles from it. Returns the bot, the lead, the staff member and the room."""
    lead, staff = await make_user("leitung"), await make_user("team")
    account = synapse.register(unique("bot"))
    room = await lead.create_room([staff.user_id, account.user_id], direct=False, name="Koordination")
    await staff.join(room)
    levels = await lead.state(room, "m.room.power_levels")
    levels["users"][staff.user_id] = 50
    await lead.client.room_put_state(room, "m.room.power_levels", levels)
    bot = await make_bot(account=account, coordination_room=room, **settings)
    await lead.wait_joined(room, bot.user_id)
    return bot, lead, staff, room


async def central_places(bot) -> list[tuple]:
    rows = await bot.bot.db.fetchall("SELECT ags, function, set_by FROM central_places")
    return [tuple(r) for r in rows]


async def test_central_place_set_in_the_coordination_changes_what_mayors_are_told(
    make_bot, make_user, synapse
):
    bot, lead, staff, room = await coordination(make_bot, make_user, synapse)
    mayor = await make_user("mayor")
    own, dm = await staff.dm(bot.user_id), await mayor.dm(bot.user_id)
    before = await mayor.ask(dm, f"!berechtigt {HALLENBERG}")
    assert "Hallenberg" in before.body and "❔" in before.body  # depends on the central-place function

    denied = await mayor.ask(dm, f"!zentralort setzen {HALLENBERG} grundzentrum_mz Regionalplan")
    assert "Hallenberg" not in denied.body and await central_places(bot) == []

    reason = "Regionalplan Arnsberg 2024 <script>alert(1)</script>"
    command = await staff.send(own, f"!zentralort setzen {HALLENBERG} grundzentrum_mz {reason}")
    recorded = await staff.wait_reply(own, command)
    assert_answers(recorded, command, staff.user_id)
    assert "Hallenberg" in recorded.body and HALLENBERG in recorded.body and reason in recorded.body
    html = recorded.source["content"]["formatted_body"]
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert await central_places(bot) == [(HALLENBERG, "grundzentrum_mz", staff.user_id)]

    # every mayor's answer now carries the verdict and the coordination's reason, escaped
    after = await mayor.ask(dm, "!berechtigt Hallenberg")
    assert "✅" in after.body and reason in after.body
    assert "<script>" not in after.source["content"]["formatted_body"]
    listing = await staff.ask(own, "!zentralort liste")
    assert HALLENBERG in listing.body and "Regionalplan Arnsberg 2024" in listing.body

    cleared = await staff.ask(own, f"!zentralort löschen {HALLENBERG}")
    assert HALLENBERG in cleared.body and await central_places(bot) == []
    assert (await mayor.ask(dm, f"!berechtigt {HALLENBERG}")).body == before.body

    # the lead takes the power level away; the bot's next answer in that room shows it has
    # seen the change, and from then on staff is refused
    levels = await lead.state(room, "m.room.power_levels")
    levels["users"][staff.user_id] = 0
    await lead.client.room_put_state(room, "m.room.power_levels", levels)
    await lead.ask(room, "!ping")
    refused = await staff.ask(own, f"!zentralort setzen {HALLENBERG} mittelzentrum Regionalplan")
    assert "Hallenberg" not in refused.body and await central_places(bot) == []


MODULE = """---
id: {id}
title: {title}
format: Webinar
topics: [digitalisierung]
duration: nach Absprache
audience: offen
summary: Ein Modul, das nur dieser Test anlegt.
source: Test
---

## Worum es geht

Nur für den Test von neuladen.
"""


async def test_reload_swaps_in_content_without_problems_and_keeps_the_old_otherwise(
    make_bot, make_user, synapse, tmp_path
):
    content = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, content)
    shipped = load_library(content)
    assert shipped.problems == [], "the shipped content must be free of problems"
    faq_count, module_count = len(shipped.faq("de")), len(shipped.modules("de"))
    bot, _lead, staff, _room = await coordination(make_bot, make_user, synapse, content_dir=content)
    mayor = await make_user("mayor")
    own, dm = await staff.dm(bot.user_id), await mayor.dm(bot.user_id)
    module_id, path = "neu-im-test", content / "modules" / "neu-im-test.md"
    # the library in service is loaded (and kept) before the file appears
    assert "Testmodul" not in (await mayor.ask(dm, f"!modul {module_id}")).body
    path.write_text(MODULE.format(id=module_id, title="Testmodul Eins"), encoding="utf-8")

    refused = await mayor.ask(dm, "!neuladen")  # members may not reload
    assert "Testmodul" not in (await mayor.ask(dm, f"!modul {module_id}")).body
    assert str(module_count + 1) not in re.findall(r"\d+", refused.body)

    command = await staff.send(own, "!neuladen")
    reloaded = await staff.wait_reply(own, command)
    assert_answers(reloaded, command, staff.user_id)
    assert {str(faq_count), str(module_count + 1)} <= set(re.findall(r"\d+", reloaded.body))
    assert "Testmodul Eins" in (await mayor.ask(dm, f"!modul {module_id}")).body

    # a broken file: the reload is refused with file and line, the version in service stays
    path.write_text(MODULE.format(id=module_id, title="Testmodul Zwei"), encoding="utf-8")
    (content / "modules" / "kaputt.md").write_text("---\nid: [kaputt\n---\nText\n", encoding="utf-8")
    failed = await staff.ask(own, "!neuladen")
    assert re.search(r"kaputt\.md:\d+", failed.body), failed.body
    assert {str(faq_count), str(module_count + 1)} <= set(re.findall(r"\d+", failed.body))
    assert "Testmodul Eins" in (await mayor.ask(dm, f"!modul {module_id}")).body

    (content / "modules" / "kaputt.md").unlink()
    await staff.ask(own, "!neuladen")
    assert "Testmodul Zwei" in (await mayor.ask(dm, f"!modul {module_id}")).body
