"""Questions as towns ask them, with the FAQ entry that should answer them.

Worded differently from the FAQ's own questions and phrasings; some with typos, some without
umlauts (ae/oe/ue), some as bare keywords. Shared by the retrieval test and ``bench/faq.py``.
"""

RETRIEVAL_SET: list[tuple[str, str]] = [
    # what the academy is, principles, background
    ("Können Sie mir kurz erklären, was diese Kleinstadtakademie eigentlich ist?", "was-ist-die-akademie"),
    ("kleinstadtakademie was ist das", "was-ist-die-akademie"),
    ("Was ist das Ziel der Akademie?", "was-ist-die-akademie"),
    ("Welche Grundsaetze gelten bei euch?", "prinzipien"),
    # the motto opens the "what is it" answer (the principles entry quotes it at the end)
    ("Was bedeutet von Kleinstädten mit Kleinstädten für Kleinstädte?", "was-ist-die-akademie"),
    ("Welches Bundesministerium fördert die Kleinstadtakademie?", "wer-steckt-dahinter"),
    ("Wer ist Vorsitzender vom Beirat?", "wer-steckt-dahinter"),
    ("Wie viele Einwohner leben in deutschen Kleinstaedten?", "kleinstaedte-in-zahlen"),
    ("Wieviele Kleinstädte hat Deutschland?", "kleinstaedte-in-zahlen"),
    # who may take part, costs, contact
    ("Unsere Gemeinde hat 12.000 Einwohner, dürfen wir mitmachen?", "wer-darf-mitmachen"),
    ("Duerfen wir als Stadt teilnehmen?", "wer-darf-mitmachen"),
    ("Wer kann sich beteiligen?", "wer-darf-mitmachen"),
    ("Ich bin Bürgermeister einer Landgemeinde, ist das Angebot auch für uns?", "wer-darf-mitmachen"),
    ("Welche Teilnahmevoraussetzungen gibt es?", "wer-darf-mitmachen"),
    ("Was müssen wir zahlen?", "kosten"),
    ("Ist die Teilnahme gratis?", "kosten"),
    ("Welche Gebühren fallen an?", "kosten"),
    ("Mit wem kann ich sprechen wenn ich Fragen habe?", "kontakt"),
    ("Wie lautet die Internetadresse?", "kontakt"),
    # formats
    ("Wie kommt man zu einem Tandem mit einer anderen Stadt?", "tandems"),
    ("Tandm Bürgermeister", "tandems"),
    ("Ich suche eine Partnerkommune zum Austauschen", "tandems"),
    ("Berät uns jemand direkt bei uns im Rathaus?", "coaching"),
    ("Gibt es mobile Coachingteams?", "coaching"),
    ("kolegiales coaching", "coaching"),
    ("Was für Lernmodule habt ihr?", "module"),
    ("Bietet ihr Weiterbildungen oder Schulungen an?", "module"),
    ("Welche Austauschformate wurden entwickelt?", "module"),
    ("Wie funktioniert die Lernwerkstat?", "lernwerkstatt"),
    ("Welche Themen behandelt die Akademie?", "themen"),
    ("Geht es auch um Leerstand in der Innenstadt?", "themen"),
    # pilot phase
    ("Seit wann gibt es die Akademie?", "pilotphase"),
    ("Was war ExWoSt?", "pilotphase"),
    ("Welche Kommunen waren Modellvorhaben?", "modellvorhaben"),
    ("Welche Modellprojekte gab es in der Pilotphase?", "modellvorhaben"),
    ("Was hat Zwönitz gemacht?", "modellvorhaben"),
    # seat, congress, tour
    ("Wo ist der Sitz der Akademie?", "standort-wittenberge"),
    ("Warum wurde Wittenberge ausgewaehlt?", "standort-wittenberge"),
    ("Wie viele Städte haben sich beworben?", "standort-wittenberge"),
    ("Was ist die Aufgabe der Geschaeftsstelle?", "aufgaben-geschaeftsstelle"),
    ("Wann findet der naechste Kleinstadtkongress statt?", "kongress"),
    ("Kongres 2027 Termin", "kongress"),
    ("Wie viele Leute waren beim Kongress?", "kongress"),
    ("Wo war die Tour 2025 überall?", "akademie-auf-tour"),
    # the bot and data
    ("Welche Kommandos versteht der Bot?", "bot-benutzen"),
    ("Wie bediene ich dich?", "bot-benutzen"),
    ("Was speicherst du über mich?", "daten-gespeichert"),
    ("Datenschutz?", "daten-gespeichert"),
    ("Bitte lösch alle meine Daten", "daten-loeschen"),
    ("Wie kann ich mein Profil loeschen?", "daten-loeschen"),
]

OFF_TOPIC: list[str] = [
    "Wie wird das Wetter morgen?",
    "Wer hat gestern das Fußballspiel gewonnen?",
    "Was kostet ein Kilo Tomaten?",
    "Kannst du mir ein Rezept für Apfelkuchen geben?",
    "Wie spät ist es?",
    "Wann fährt der nächste Zug nach Berlin?",
    "Erzähl mir einen Witz",
    "Wie heißt die Hauptstadt von Frankreich?",
    "Regnet es in Wittenberge?",
]
