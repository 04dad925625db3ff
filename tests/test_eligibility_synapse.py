"""``!berechtigt`` through a real Synapse, asked by a second client."""

from __future__ import annotations

import asyncio
import csv

import pytest

from commands.towns_search import CACHE_KEY
from storage.municipalities import SHIPPED_CSV
from tests.matrix_fixtures import WAIT, assert_answers

pytestmark = pytest.mark.synapse


async def test_eligible_answer_arrives_as_notice(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    command_id = await mayor.send(room, "!berechtigt Bad Berleburg")
    answer = await mayor.wait_reply(room, command_id)
    content = answer.source["content"]
    assert content["msgtype"] == "m.notice"
    assert "Ja, Bad Berleburg kann mitmachen" in content["body"]
    assert "18.400" in content["body"]
    assert "<strong>Bad Berleburg</strong>" in content["formatted_body"]
    assert "Statistisches Bundesamt (Destatis)" in content["body"] and "dl-de/by-2-0" in content["body"]


async def test_names_as_people_write_them_an_open_verdict_and_a_refused_number(make_bot, make_user):
    """The town index is built right after start, before any command; then names as people
    write them, a member town whose Verband's figure gives another verdict, and a number that
    means nothing, each answered through the homeserver."""
    bot = await make_bot()
    services = bot.bot.dispatcher.services
    async with asyncio.timeout(WAIT):
        # built by the start-up hook, before anyone asked (the hook has no event of its own)
        while CACHE_KEY not in services.cache:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    index = services.cache[CACHE_KEY]
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)

    command = await mayor.send(room, "!berechtigt Lutherstadt Eisleben")
    eisleben = await mayor.wait_reply(room, command)
    assert_answers(eisleben, command, mayor.user_id)
    assert "<strong>Eisleben</strong>" in eisleben.source["content"]["formatted_body"]
    assert "Leider nein" in eisleben.body and "Eisleben, Lutherstadt" not in eisleben.body

    garmisch = await mayor.ask(room, "!berechtigt Garmisch")
    assert "Garmisch-Partenkirchen" in garmisch.body and ", M" not in garmisch.body

    aisch = await mayor.ask(room, "!berechtigt Neustadt an der Aisch")
    assert "Neustadt an der Aisch" in aisch.body and "a.d.Aisch" not in aisch.body

    with SHIPPED_CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    arkebek = next(r for r in rows if r["ags"] == "01051002")
    verband = [r for r in rows if r["ars"][:9] == arkebek["ars"][:9]]
    total = sum(int(r["population"]) for r in verband)
    open_answer = await mayor.ask(room, "!berechtigt Arkebek")
    assert "Ob Arkebek mitmachen kann, ist offen." in open_answer.body
    assert f"{total:,}".replace(",", ".") in open_answer.body and "225" in open_answer.body
    assert "entscheidet die Koordination" in open_answer.body and "✅" not in open_answer.body

    refused = await mayor.ask(room, "!berechtigt 1.2.3")
    assert "„1.2.3“ kann ich nicht als Zahl lesen" in refused.body
    assert "<code>!berechtigt 18.400</code>" in refused.source["content"]["formatted_body"]

    assert services.cache[CACHE_KEY] is index  # the answers used the index built at start
