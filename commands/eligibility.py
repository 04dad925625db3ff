"""``!berechtigt`` / ``!eligible``: may a town take part in the Kleinstadtakademie?

The rule (academy FAQ): a Kleinstadt has 5,000 to under 20,000 inhabitants, or at least a
"grundzentrale Funktion mit mittelzentraler Teilfunktion". Populations come from the Destatis
register (``storage.municipalities``); the register has no central-place status, so for towns under
5,000 the answer explains the condition unless a coordinator recorded the status
(``!zentralort setzen``). BBSR bands (shared/domain/facts.md): Landgemeinde < 5,000 ≤ kleine
Kleinstadt < 10,000 ≤ größere Kleinstadt < 20,000 ≤ Mittelstadt < 100,000 ≤ Großstadt; under 5,000
with at least that central-place function a town is a (kleine) Kleinstadt too.

The BBSR assigns its types to Einheitsgemeinden and to Gemeindeverbände as a whole, not to the
member towns of a Verband. For a member town the answer therefore weighs two figures: its own and
its Verband's. Where both give the same verdict, that is the answer; where they differ, the
verdict is open (``assess``): the answer says so, gives both figures and leaves the decision to the
academy's coordinators. All of this is decided here and handed to the templates as data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from commands.context import Context, Role
from commands.registry import Arg, command
from commands.towns_search import MAX_QUERY_LENGTH, NumberReading, SearchResult, find_towns, town_index
from config.catalogs import N_, NP_
from storage.municipalities import (
    CENTRAL_FUNCTIONS,
    CentralPlace,
    Municipality,
    MunicipalityRepository,
    parse_central_function,
)

KLEINSTADT_MIN = 5_000
KLEINSTADT_MAX = 20_000  # exclusive
GROESSERE_KLEINSTADT = 10_000
GROSSSTADT = 100_000

Verdict = Literal["eligible", "not_eligible", "depends"]
Headline = Literal["eligible", "not_eligible", "depends", "open"]


def band(population: int, central: CentralPlace | None = None) -> str:
    """The BBSR size band: by population, and under 5,000 by a recorded central-place function
    (``kleinstadt_zentralort``: a Kleinstadt by its function, not its size)."""
    if population < KLEINSTADT_MIN:
        return "kleinstadt_zentralort" if central is not None and central.qualifies else "landgemeinde"
    if population < GROESSERE_KLEINSTADT:
        return "kleine_kleinstadt"
    if population < KLEINSTADT_MAX:
        return "groessere_kleinstadt"
    if population < GROSSSTADT:
        return "mittelstadt"
    return "grossstadt"


def verdict(population: int, central: CentralPlace | None = None) -> Verdict:
    """eligible / not_eligible / depends (under 5,000 without a recorded central-place status)."""
    if KLEINSTADT_MIN <= population < KLEINSTADT_MAX:
        return "eligible"
    if population >= KLEINSTADT_MAX:
        return "not_eligible"
    if central is None:
        return "depends"
    return "eligible" if central.qualifies else "not_eligible"


@dataclass(frozen=True)
class Assessment:
    """The verdict for one municipality, with what it rests on.

    ``headline`` is the one verdict the answer leads with: the town's own verdict for an
    Einheitsgemeinde (verbandsfreie Gemeinde) and wherever the Verband's figure agrees; ``open``
    where a member town's own figure and its Verband's give different verdicts."""

    own: Verdict
    own_band: str
    headline: Headline
    verband_population: int | None = None
    verband_members: int | None = None
    verband_band: str | None = None
    verband_verdict: Verdict | None = None

    @property
    def in_verband(self) -> bool:
        return self.verband_population is not None


def assess(town: Municipality, central: CentralPlace | None, verband: tuple[int, int] | None) -> Assessment:
    """The verdict for ``town``; ``verband`` is its Gemeindeverband's (population, members).

    A recorded function that qualifies the town qualifies its Verband too (a Verband has at least
    the functions of its members); a record of no function says nothing about the other members."""
    own = verdict(town.population, central)
    own_band = band(town.population, central)
    if verband is None:
        return Assessment(own, own_band, own)
    total, members = verband
    function = central if central is not None and central.qualifies else None
    theirs = verdict(total, function)
    return Assessment(
        own,
        own_band,
        own if theirs == own else "open",
        verband_population=total,
        verband_members=members,
        verband_band=band(total, function),
        verband_verdict=theirs,
    )


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
    word = ctx.invocation(ELIGIBLE)
    return [f"{word} Bad Berleburg", f"{word} Neustadt, Holstein", f"{word} 12000"]


async def _source(ctx: Context) -> dict[str, str]:
    info = await MunicipalityRepository(ctx.db).info()
    if info is None:
        return {"gebietsstand": "", "population_date": ""}
    return {"gebietsstand": info.gebietsstand, "population_date": info.population_date}


async def answer_for(ctx: Context, town: Municipality, matched_by: str, query: str) -> dict[str, Any]:
    """Template data of the full answer for one municipality."""
    central = await MunicipalityRepository(ctx.db).central_place(town.ags)
    verdict_for = assess(town, central, (await town_index(ctx.services)).verband(town))
    data: dict[str, Any] = {
        "town": _town_data(town),
        "band": verdict_for.own_band,
        "verdict": verdict_for.headline,
        "own_verdict": verdict_for.own,
        "by_function": verdict_for.own != "depends" and town.population < KLEINSTADT_MIN,
        "min": KLEINSTADT_MIN,
        "max": KLEINSTADT_MAX,
        "query": query,
        "typo": matched_by == "fuzzy",
        "plz": query if matched_by == "plz" else None,
        # a lookup by key shows the register's own spelling of the name too
        "official": town.name_official if matched_by in ("ags", "ars") else None,
        "word": ctx.invocation(ELIGIBLE),
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
    if verdict_for.in_verband:
        data["verband"] = {
            "name": town.verband_label,
            "type": town.gemeindeverband_type,
            "population": verdict_for.verband_population,
            "members": verdict_for.verband_members,
            "band": verdict_for.verband_band,
            "verdict": verdict_for.verband_verdict,
            "agrees": verdict_for.headline != "open",
        }
    return data


async def _number_answer(ctx: Context, query: str, number: NumberReading) -> None:
    """A query of digits that is no key of a town: a number of inhabitants, or a clear refusal
    that says what is wrong and how to write it."""
    word = ctx.invocation(ELIGIBLE)
    examples = _examples(ctx)
    if number.kind in ("ags", "ars"):
        await ctx.reply("eligible_not_found", query=query, key=True, examples=examples)
        return
    count = number.value
    problem = number.problem
    if number.kind == "plz" and count is None:
        problem = "plz_unknown"
    detail: dict[str, Any] = {"digits": number.digits, "length": len(number.digits), "padded": ""}
    if count is not None and not problem:
        largest_ags, largest = (await town_index(ctx.services)).largest()
        if 0 < count <= largest:
            await ctx.reply(
                "eligible_number",
                population=count,
                band=band(count),
                verdict=verdict(count),
                min=KLEINSTADT_MIN,
                max=KLEINSTADT_MAX,
                examples=examples,
            )
            return
        problem = "zero" if count == 0 else "too_big"
        if problem == "too_big":
            biggest = await MunicipalityRepository(ctx.db).get(largest_ags)
            detail.update(largest=largest, largest_name=biggest.name if biggest else "")
    if problem == "length":
        # a key whose leading zero was lost (spreadsheets drop it): "5970004" for 05970004
        index = await town_index(ctx.services)
        padded = "0" + number.digits
        if len(padded) == 8 and index.has_ags(padded):
            town = await MunicipalityRepository(ctx.db).get(padded)
            detail.update(padded=padded, padded_name=town.name if town else "")
    example = {
        "length": f"{word} 05970004",
        "plz_unknown": f"{word} Bad Berleburg",
        "digits": f"{word} 12000",
    }.get(problem, f"{word} {'18.400' if ctx.locale == 'de' else '18,400'}")
    await ctx.reply(
        "eligible_help",
        reason=problem,
        query=query,
        detail=detail,
        examples=[example, *(e for e in examples if e != example)],
    )


# --- !berechtigt -------------------------------------------------------------------------------


@command(
    "eligible",
    aliases={"de": ["berechtigt"], "en": ["eligible"]},
    group="towns",
    args=[Arg("query", "text", required=False, label=NP_("usage", "Gemeinde"))],
    summary=N_("Sagt, ob eine Gemeinde bei der Kleinstadtakademie mitmachen kann."),
    help=N_(
        "Geben Sie den Namen der Gemeinde ein (Umlaute und Tippfehler sind kein Problem), bei "
        "Bedarf mit Kreis oder Land. Sie können auch den Gemeindeschlüssel (AGS), die Postleitzahl "
        "oder eine Einwohnerzahl (18400 oder 18.400) angeben. Die Zahlen stammen aus dem amtlichen "
        "Gemeindeverzeichnis."
    ),
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
            query="",
            detail={"limit": MAX_QUERY_LENGTH},
            examples=_examples(ctx),
        )
        return
    result: SearchResult = await find_towns(ctx.services, query)
    if result.status == "not_found":
        if result.number is not None:
            await _number_answer(ctx, query, result.number)
            return
        await ctx.reply("eligible_not_found", query=query, key=False, examples=_examples(ctx))
        return
    word = ctx.invocation(ELIGIBLE)
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
    summary=N_("Vermerkt die zentralörtliche Funktion einer Gemeinde (für Gemeinden unter 5.000)."),
    help=N_(
        "Das Gemeindeverzeichnis kennt die zentralörtliche Funktion nicht. Hier vermerken Sie sie "
        "aus dem Regionalplan des Landes, mit Begründung. Funktionen: %(functions)s."
    ),
    text_values={"functions": ", ".join(CENTRAL_FUNCTIONS)},
    examples=[
        N_("zentralort setzen 07231001 grundzentrum_mz Regionalplan Trier 2024"),
        N_("zentralort löschen 07231001"),
        N_("zentralort liste"),
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
    audited=True,
    aliases={"de": ["setzen"], "en": ["set"]},
    summary=N_("Vermerkt die Funktion, mit Begründung."),
    args=[
        Arg("town", label=NP_("usage", "AGS")),
        Arg("function", label=NP_("usage", "Funktion")),
        Arg("reason", "text", label=NP_("usage", "Begründung")),
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
        # what mayors are told from now on, the Gemeindeverband's figure included
        verdict=assess(
            found,
            CentralPlace(found.ags, code, reason, ctx.sender, now),
            (await town_index(ctx.services)).verband(found),
        ).headline,
    )


@central_place.subcommand(
    "clear",
    audited=True,
    aliases={"de": ["löschen", "loeschen", "entfernen"], "en": ["clear"]},
    summary=N_("Entfernt den Vermerk wieder."),
    args=[Arg("town", label=NP_("usage", "AGS"))],
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
    summary=N_("Zeigt alle Vermerke."),
)
async def central_list(ctx: Context) -> None:
    repo = MunicipalityRepository(ctx.db)
    places = await repo.central_places()
    towns = {t.ags: t for t in await repo.get_many([p.ags for p in places])}
    entries = []
    for place in places:
        town = towns.get(place.ags)
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
