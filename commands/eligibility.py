"""``!berechtigt`` / ``!eligible``: may a town take part in the Kleinstadtakademie?

The rule (academy FAQ): a Kleinstadt has 5,000 to under 20,000 inhabitants, or at least a
"grundzentrale Funktion mit mittelzentraler Teilfunktion". Populations come from the Destatis
register (``storage.municipalities``); the register has no central-place status, so for towns under
5,000 the answer explains the condition unless a coordinator recorded the status
(``!zentralort setzen``). BBSR bands: Landgemeinde < 5,000 ≤ kleine Kleinstadt < 10,000 ≤ größere
Kleinstadt < 20,000 ≤ Mittelstadt < 100,000 ≤ Großstadt.
"""

from __future__ import annotations

import re
from typing import Any

from commands.context import Context, Role
from commands.parsing import is_digits, parse_number
from commands.registry import Arg, command
from commands.towns_search import MAX_QUERY_LENGTH, find_towns, town_index
from storage.municipalities import (
    CENTRAL_FUNCTIONS,
    CentralPlace,
    Municipality,
    MunicipalityRepository,
    parse_central_function,
)

KLEINSTADT_MIN = 5_000
KLEINSTADT_MAX = 20_000  # exclusive
MAX_POPULATION = 10_000_000
_POPULATION_WORDS = re.compile(r"\s*(einwohner(innen)?|einw\.?|ew|inhabitants|people|menschen)\s*$", re.I)


def band(population: int) -> str:
    """The BBSR size band by population alone."""
    if population < KLEINSTADT_MIN:
        return "landgemeinde"
    if population < 10_000:
        return "kleine_kleinstadt"
    if population < KLEINSTADT_MAX:
        return "groessere_kleinstadt"
    if population < 100_000:
        return "mittelstadt"
    return "grossstadt"


def verdict(population: int, central: CentralPlace | None = None) -> str:
    """eligible / not_eligible / depends (under 5,000 without a recorded central-place status)."""
    if KLEINSTADT_MIN <= population < KLEINSTADT_MAX:
        return "eligible"
    if population >= KLEINSTADT_MAX:
        return "not_eligible"
    if central is None:
        return "depends"
    return "eligible" if central.qualifies else "not_eligible"


def parse_population(query: str) -> int | None:
    """``12000``, ``12.000``, ``12 000 Einwohner`` → 12000; None if the query is not a plain number."""
    text = _POPULATION_WORDS.sub("", query.strip())
    return parse_number(text, separators=".,' ", max_digits=MAX_QUERY_LENGTH)


def _town_data(town: Municipality) -> dict[str, Any]:
    return {
        "ags": town.ags,
        "name": town.name,
        "name_official": town.name_official,
        "kreis": town.kreis,
        "kreis_label": town.kreis_label,
        "kreisfrei": town.kreisfrei,
        "land": town.land,
        "population": town.population,
        "population_date": town.population_date,
        "gemeinde_type": town.gemeinde_type,
    }


def _examples(ctx: Context) -> list[str]:
    word = ctx.prefix + ELIGIBLE.display_name(ctx.locale)
    return [f"{word} Bad Berleburg", f"{word} Neustadt, Holstein", f"{word} 12000"]


async def _source(ctx: Context) -> dict[str, str]:
    info = await MunicipalityRepository(ctx.db).info()
    if info is None:
        return {"gebietsstand": "", "population_date": ""}
    return {"gebietsstand": info.gebietsstand, "population_date": info.population_date}


async def answer_for(ctx: Context, town: Municipality, matched_by: str, query: str) -> dict[str, Any]:
    """Template data of the full answer for one municipality."""
    central = await MunicipalityRepository(ctx.db).central_place(town.ags)
    own = verdict(town.population, central)
    data: dict[str, Any] = {
        "town": _town_data(town),
        "band": band(town.population),
        "verdict": own,
        "min": KLEINSTADT_MIN,
        "max": KLEINSTADT_MAX,
        "query": query,
        "typo": matched_by == "fuzzy",
        "plz": query if matched_by == "plz" else None,
        "word": ctx.prefix + ELIGIBLE.display_name(ctx.locale),
        "central": None,
        "verband": None,
        "source": await _source(ctx),
        "coordinators": bool(ctx.settings.coordinators),
    }
    if central is not None:
        data["central"] = {
            "function": central.function,
            "qualifies": central.qualifies,
            "reason": central.reason,
            "set_at": central.set_at[:10],
        }
    combined = (await town_index(ctx.services)).verband(town)
    if combined is not None:
        total, members = combined
        data["verband"] = {
            "name": town.gemeindeverband,
            "type": town.gemeindeverband_type,
            "population": total,
            "members": members,
            "band": band(total),
            "verdict": verdict(total),
            "changes": verdict(total) != own,
        }
    return data


# --- !berechtigt -------------------------------------------------------------------------------


@command(
    "eligible",
    aliases={"de": ["berechtigt"], "en": ["eligible"]},
    group="towns",
    args=[Arg("query", "text", required=False, label={"de": "Gemeinde", "en": "town"})],
    summary={
        "de": "Sagt, ob eine Gemeinde bei der Kleinstadtakademie mitmachen kann.",
        "en": "Tells whether a town can take part in the Kleinstadtakademie.",
    },
    help={
        "de": "Gib den Namen der Gemeinde ein (Umlaute und Tippfehler sind kein Problem), dazu bei "
        "Bedarf Kreis oder Land. Auch der Gemeindeschlüssel (AGS), die Postleitzahl oder "
        "eine Einwohnerzahl gehen. Die Zahlen stammen aus dem amtlichen Gemeindeverzeichnis.",
        "en": "Give the town's name (umlauts and typos are fine), with its Kreis or Land if needed. "
        "The municipality key (AGS), the postcode or a number of inhabitants work too. The "
        "figures come from the official municipality register.",
    },
    examples=[
        "berechtigt Bad Berleburg",
        "berechtigt Neustadt, Holstein",
        "berechtigt 05970004",
        "berechtigt 12000",
    ],
)
async def eligible(ctx: Context, query: str | None = None) -> None:
    query = " ".join((query or "").split())
    if not query or len(query) > MAX_QUERY_LENGTH:
        await ctx.reply(
            "eligible_help",
            reason="empty" if not query else "too_long",
            limit=MAX_QUERY_LENGTH,
            examples=_examples(ctx),
        )
        return
    result = await find_towns(ctx.services, query)
    if result.status == "not_found":
        population = parse_population(query)
        digits = re.sub(r"\s", "", query)
        if population is not None and not (is_digits(digits) and len(digits) in (8, 12)):
            if population > MAX_POPULATION:
                await ctx.reply(
                    "eligible_help", reason="too_big", limit=MAX_POPULATION, examples=_examples(ctx)
                )
                return
            await ctx.reply(
                "eligible_number",
                population=population,
                band=band(population),
                verdict=verdict(population),
                min=KLEINSTADT_MIN,
                max=KLEINSTADT_MAX,
                examples=_examples(ctx),
            )
            return
        await ctx.reply(
            "eligible_not_found",
            query=query,
            key=is_digits(digits) and len(digits) in (8, 12),
            examples=_examples(ctx),
        )
        return
    word = ctx.prefix + ELIGIBLE.display_name(ctx.locale)
    if result.status == "exact":
        await ctx.reply("eligible_answer", **await answer_for(ctx, result.towns[0], result.matched_by, query))
        return
    towns = [_town_data(t) for t in result.towns]
    if result.status == "ambiguous":
        by_plz = result.matched_by == "plz"
        first = next((t for t in result.towns if not t.kreisfrei), result.towns[0])
        narrow = first.land if first.kreisfrei else first.kreis
        await ctx.reply(
            "eligible_ambiguous",
            query=query,
            towns=towns[:12],
            more=max(0, len(towns) - 12),
            total=len(towns),
            word=word,
            example_name=first.name if by_plz else query,
            example_narrow=narrow,
            example_ags=first.ags,
            by_plz=by_plz,
        )
        return
    await ctx.reply("eligible_suggestions", query=query, towns=towns, word=word)


ELIGIBLE = eligible


# --- !zentralort (coordinators) ------------------------------------------------------------------

central_place = command(
    "centralplace",
    aliases={"de": ["zentralort"], "en": ["centralplace"]},
    group="towns",
    role=Role.COORDINATOR,
    summary={
        "de": "Zentralörtliche Funktion einer Gemeinde vermerken (für Gemeinden unter 5.000).",
        "en": "Record a town's central-place function (for towns under 5,000).",
    },
    help={
        "de": "Das Gemeindeverzeichnis kennt die zentralörtliche Funktion nicht. Hier vermerkt ihr "
        "sie aus dem Regionalplan des Landes, mit Begründung. Funktionen: "
        + ", ".join(CENTRAL_FUNCTIONS)
        + ".",
        "en": "The register does not know the central-place function. Record it here from the "
        "Land's regional plan, with a reason. Functions: " + ", ".join(CENTRAL_FUNCTIONS) + ".",
    },
    examples=[
        "zentralort setzen 07231001 grundzentrum_mz Regionalplan Trier 2024",
        "zentralort löschen 07231001",
        "zentralort liste",
    ],
)(None)  # no handler of its own: the dispatcher shows the subcommands


async def _one_town(ctx: Context, town: str) -> Municipality | None:
    result = await find_towns(ctx.services, town)
    if result.status == "exact":
        return result.towns[0]
    await ctx.reply(
        "eligible_central_error",
        problem="town",
        query=town,
        status=result.status,
        towns=[_town_data(t) for t in result.towns[:8]],
    )
    return None


@central_place.subcommand(
    "set",
    aliases={"de": ["setzen"], "en": ["set"]},
    summary={"de": "Funktion vermerken, mit Begründung.", "en": "Record the function, with a reason."},
    args=[
        Arg("town", label={"de": "AGS", "en": "AGS"}),
        Arg("function", label={"de": "funktion", "en": "function"}),
        Arg("reason", "text", label={"de": "begründung", "en": "reason"}),
    ],
)
async def central_set(ctx: Context, town: str, function: str, reason: str) -> None:
    code = parse_central_function(function)
    if code is None:
        await ctx.reply(
            "eligible_central_error",
            problem="function",
            query=function,
            status="",
            towns=[],
            functions=list(CENTRAL_FUNCTIONS),
        )
        return
    found = await _one_town(ctx, town)
    if found is None:
        return
    now = ctx.services.clock.now().isoformat()
    await MunicipalityRepository(ctx.db).set_central_place(found.ags, code, reason, ctx.sender, now)
    await ctx.reply(
        "eligible_central_set",
        town=_town_data(found),
        function=code,
        qualifies=CENTRAL_FUNCTIONS[code],
        reason=reason,
        verdict=verdict(found.population, CentralPlace(found.ags, code, reason, ctx.sender, now)),
    )


@central_place.subcommand(
    "clear",
    aliases={"de": ["löschen", "loeschen", "entfernen"], "en": ["clear"]},
    summary={"de": "Vermerk wieder entfernen.", "en": "Remove the record."},
    args=[Arg("town", label={"de": "AGS", "en": "AGS"})],
)
async def central_clear(ctx: Context, town: str) -> None:
    found = await _one_town(ctx, town)
    if found is None:
        return
    removed = await MunicipalityRepository(ctx.db).clear_central_place(found.ags)
    await ctx.reply("eligible_central_cleared", town=_town_data(found), removed=removed)


@central_place.subcommand(
    "list",
    aliases={"de": ["liste"], "en": ["list"]},
    summary={"de": "Alle Vermerke zeigen.", "en": "Show all records."},
)
async def central_list(ctx: Context) -> None:
    repo = MunicipalityRepository(ctx.db)
    index = await town_index(ctx.services)
    entries = []
    for place in await repo.central_places():
        town = index.by_ags.get(place.ags)
        entries.append(
            {
                "ags": place.ags,
                "name": town.name if town else None,
                "function": place.function,
                "qualifies": place.qualifies,
                "reason": place.reason,
                "set_at": place.set_at[:10],
            }
        )
    await ctx.reply("eligible_central_list", entries=entries[:50], more=max(0, len(entries) - 50))
