"""Town names as people write them, with the municipality they mean (AGS).

Written from how towns are referred to in everyday use (letters, websites, road signs, speech),
not from the register's own strings: qualifiers spelled out ("Neustadt an der Aisch"), honorary
parts in front ("Lutherstadt Eisleben"), short forms ("Garmisch"), without umlauts, with typos.
The bare name of several towns means the largest one ("Frankfurt").

The set is split by a hash of the query into a tuning half and a held-out half. Only the tuning
half may be looked at when changing the search; the held-out half is reported as it comes
(``bench/eligible.py``). Shared by ``tests/test_town_names.py`` and the benchmark.
"""

from __future__ import annotations

import hashlib

# query, AGS of the municipality meant (its official register name in the comment)
QUERIES: list[tuple[str, str]] = [
    # place names with their qualifier written out (the register abbreviates: a.d., i.OB, b., v.d. …)
    ("Bad Tölz", "09173112"),  # Bad Tölz, St
    ("Dießen am Ammersee", "09181114"),  # Dießen am Ammersee, M
    ("Neustadt an der Aisch", "09575153"),  # Neustadt a.d.Aisch, St
    ("Weiden in der Oberpfalz", "09363000"),  # Weiden i.d.OPf.
    ("Neumarkt in der Oberpfalz", "09373147"),  # Neumarkt i.d.OPf., GKSt
    ("Mühldorf am Inn", "09183128"),  # Mühldorf a.Inn, St
    ("Pfaffenhofen an der Ilm", "09186143"),  # Pfaffenhofen a.d.Ilm, St
    ("Lauf an der Pegnitz", "09574138"),  # Lauf a.d.Pegnitz, St
    ("Limburg an der Lahn", "06533009"),  # Limburg a. d. Lahn, Kreisstadt
    ("Bad Homburg vor der Höhe", "06434001"),  # Bad Homburg v. d. Höhe, Stadt
    ("Weilheim in Oberbayern", "09190157"),  # Weilheim i.OB, St
    ("Rotenburg an der Fulda", "06632018"),  # Rotenburg a. d. Fulda, Stadt
    ("Dillingen an der Donau", "09773125"),  # Dillingen a.d.Donau, GKSt
    ("Prien am Chiemsee", "09187162"),  # Prien a.Chiemsee, M
    ("Murnau am Staffelsee", "09180124"),  # Murnau a.Staffelsee, M
    ("Immenstadt im Allgäu", "09780124"),  # Immenstadt i.Allgäu, St
    ("Weißenburg in Bayern", "09577177"),  # Weißenburg i.Bay., GKSt
    ("Hofheim in Unterfranken", "09674149"),  # Hofheim i.UFr., St
    ("Höchst im Odenwald", "06437009"),  # Höchst i. Odw.
    ("Grafing bei München", "09175122"),  # Grafing b.München, St
    ("Altdorf bei Nürnberg", "09574112"),  # Altdorf b.Nürnberg, St
    ("Bernau bei Berlin", "12060020"),  # Bernau bei Berlin, Stadt
    ("Wasserburg am Inn", "09187182"),  # Wasserburg a.Inn, St
    ("Landau an der Isar", "09279122"),  # Landau a.d.Isar, St
    ("Moosburg an der Isar", "09178143"),  # Moosburg a.d.Isar, St
    ("Neuburg an der Donau", "09185149"),  # Neuburg a.d.Donau, GKSt
    ("Bad Neustadt an der Saale", "09673114"),  # Bad Neustadt a.d.Saale, St
    ("Rottenburg an der Laaber", "09274176"),  # Rottenburg a.d.Laaber, St
    ("Bad Königshofen im Grabfeld", "09673141"),  # Bad Königshofen i.Grabfeld, St
    ("Bischofsheim in der Rhön", "09673117"),  # Bischofsheim i.d.Rhön, St
    ("Lohr am Main", "09677155"),  # Lohr a.Main, St
    ("Gemünden am Main", "09677131"),  # Gemünden a.Main, St
    ("Zeil am Main", "09674221"),  # Zeil a.Main, St
    ("Höchstadt an der Aisch", "09572135"),  # Höchstadt a.d.Aisch, St
    ("Röthenbach an der Pegnitz", "09574152"),  # Röthenbach a.d.Pegnitz, St
    ("Simbach am Inn", "09277145"),  # Simbach a.Inn, St
    ("Haag in Oberbayern", "09183119"),  # Haag i.OB, M
    ("Gmund am Tegernsee", "09182116"),  # Gmund a.Tegernsee
    ("Kochel am See", "09173133"),  # Kochel a.See
    ("Lindenberg im Allgäu", "09776117"),  # Lindenberg i.Allgäu, St
    ("Bad Griesbach im Rottal", "09275124"),  # Bad Griesbach i.Rottal, St
    ("Au in der Hallertau", "09178116"),  # Au i.d.Hallertau, M
    ("Rosbach vor der Höhe", "06440023"),  # Rosbach v. d. Höhe, Stadt
    ("Sohland an der Spree", "14625560"),  # Sohland a. d. Spree
    ("Schwarzenbach an der Saale", "09475168"),  # Schwarzenbach a.d.Saale, St
    ("Neustadt an der Waldnaab", "09374139"),  # Neustadt a.d.Waldnaab, St
    ("Laucha an der Unstrut", "15084285"),  # Laucha an der Unstrut, Stadt
    ("Bad Berneck im Fichtelgebirge", "09472116"),  # Bad Berneck i.Fichtelgebirge, St
    ("Neukirchen beim Heiligen Blut", "09372144"),  # Neukirchen b.Hl.Blut, M
    ("Born auf dem Darß", "13073012"),  # Born a. Darß, Seebad
    ("Bernstadt auf dem Eigen", "14626030"),  # Bernstadt a. d. Eigen, Stadt
    ("Berka vor dem Hainich", "16063006"),  # Berka v. d. Hainich
    ("Garching bei München", "09184119"),  # Garching b.München, St
    ("Kirchheim bei München", "09184131"),  # Kirchheim b.München
    ("Ramsau bei Berchtesgaden", "09172129"),  # Ramsau b.Berchtesgaden
    ("Schönau am Königssee", "09172132"),  # Schönau a.Königssee
    # honorary and former name parts before the name (the register puts them after a comma)
    ("Lutherstadt Eisleben", "15087130"),  # Eisleben, Lutherstadt
    ("Lutherstadt Wittenberg", "15091375"),  # Wittenberg, Lutherstadt
    ("Hansestadt Wismar", "13074087"),  # Wismar, Hansestadt
    ("Hansestadt Stralsund", "13073088"),  # Stralsund, Hansestadt
    ("Hansestadt Rostock", "13003000"),  # Rostock, Hanse- und Universitätsstadt
    ("Universitätsstadt Marburg", "06534014"),  # Marburg, Universitätsstadt
    ("Universitätsstadt Gießen", "06531005"),  # Gießen, Universitätsstadt
    ("Ostseebad Binz", "13073011"),  # Binz, Ostseebad
    ("Ostseebad Kühlungsborn", "13072060"),  # Kühlungsborn, Ostseebad, Stadt
    ("Barbarossastadt Gelnhausen", "06435010"),  # Gelnhausen, Barbarossastadt, Kreisstadt
    ("Klingenstadt Solingen", "05122000"),  # Solingen, Klingenstadt
    ("documenta-Stadt Kassel", "06611000"),  # Kassel, documenta-Stadt
    ("Brüder-Grimm-Stadt Hanau", "06435014"),  # Hanau, Brüder-Grimm-Stadt
    ("Kupferstadt Stolberg", "05334032"),  # Stolberg (Rhld.), Kupferstadt
    ("Oranienstadt Dillenburg", "06532006"),  # Dillenburg, Oranienstadt
    ("Reuterstadt Stavenhagen", "13071142"),  # Stavenhagen, Reuterstadt, Stadt
    ("Landeshauptstadt Kiel", "01002000"),  # Kiel, Landeshauptstadt
    ("Große Kreisstadt Pirna", "14628270"),  # Pirna, Stadt
    ("Kurort Oybin", "14626430"),  # Oybin
    ("Seebad Heringsdorf", "13075049"),  # Heringsdorf, Ostseebad
    ("Widukindstadt Enger", "05758008"),  # Enger, Widukindstadt
    ("Freie und Hansestadt Hamburg", "02000000"),  # Hamburg, Freie und Hansestadt
    ("Markt Garmisch-Partenkirchen", "09180117"),  # Garmisch-Partenkirchen, M
    ("Gemeinde Grainau", "09180118"),  # Grainau
    ("Fontanestadt Neuruppin", "12068320"),  # Neuruppin, Stadt
    # short forms and spellings of double names
    ("Garmisch", "09180117"),  # Garmisch-Partenkirchen, M
    ("Villingen", "08326074"),  # Villingen-Schwenningen, Stadt
    ("Castrop", "05562004"),  # Castrop-Rauxel, Stadt
    ("Leinfelden", "08116078"),  # Leinfelden-Echterdingen, Stadt
    ("Oestrich Winkel", "06439012"),  # Oestrich-Winkel, Stadt
    ("Sulzbach Rosenberg", "09371151"),  # Sulzbach-Rosenberg, St
    ("Lauda", "08128139"),  # Lauda-Königshofen, Stadt
    ("Zeulenroda", "16076087"),  # Zeulenroda-Triebes, Stadt
    ("Kirchheim unter Teck", "08116033"),  # Kirchheim unter Teck, Stadt
    ("Hohen Neuendorf", "12065144"),  # Hohen Neuendorf, Stadt
    ("Sankt Peter-Ording", "01054113"),  # Sankt Peter-Ording
    ("St. Peter Ording", "01054113"),  # Sankt Peter-Ording
    # river or region qualifiers as people write them
    ("Halle Saale", "15002000"),  # Halle (Saale), Stadt
    ("Halle an der Saale", "15002000"),  # Halle (Saale), Stadt
    ("Frankfurt Oder", "12053000"),  # Frankfurt (Oder), Stadt
    ("Frankfurt an der Oder", "12053000"),  # Frankfurt (Oder), Stadt
    ("Herzberg Elster", "12062224"),  # Herzberg (Elster), Stadt
    ("Mühlhausen in Thüringen", "16064046"),  # Mühlhausen/Thüringen, Stadt
    ("Schwedt an der Oder", "12073532"),  # Schwedt/Oder, Stadt
    ("Fürstenwalde an der Spree", "12067144"),  # Fürstenwalde/Spree, Stadt
    ("Lübben im Spreewald", "12061316"),  # Lübben (Spreewald) / Lubin (Błota), Stadt
    ("Lübbenau im Spreewald", "12066196"),  # Lübbenau/Spreewald / Lubnjow/Błota, Stadt
    ("Forst in der Lausitz", "12071076"),  # Forst (Lausitz)/Baršć (Łužyca), Stadt
    ("Weißwasser Oberlausitz", "14626600"),  # Weißwasser/O.L., Stadt / Běła Woda
    ("Schwarzenberg im Erzgebirge", "14521550"),  # Schwarzenberg/Erzgeb., Stadt
    ("Oelsnitz im Vogtland", "14523300"),  # Oelsnitz/Vogtl., Stadt
    ("Auerbach im Vogtland", "14523020"),  # Auerbach/Vogtl., Stadt
    ("Lahr im Schwarzwald", "08317065"),  # Lahr/Schwarzwald, Stadt
    ("Stolberg im Rheinland", "05334032"),  # Stolberg (Rhld.), Kupferstadt
    ("Halle in Westfalen", "05754012"),  # Halle (Westf.), Stadt
    ("Gronau in Westfalen", "05554020"),  # Gronau (Westf.), Stadt
    ("Verden an der Aller", "03361012"),  # Verden (Aller), Stadt
    ("Nienburg an der Weser", "03256022"),  # Nienburg (Weser), Stadt
    ("Rotenburg an der Wümme", "03357039"),  # Rotenburg (Wümme), Stadt
    ("Lingen an der Ems", "03454032"),  # Lingen (Ems), Stadt
    ("Waren an der Müritz", "13071156"),  # Waren (Müritz), Stadt
    ("Freiburg an der Elbe", "03359018"),  # Freiburg (Elbe), Flecken
    ("Lauenburg an der Elbe", "01053083"),  # Lauenburg/ Elbe, Stadt
    ("Wittstock an der Dosse", "12068468"),  # Wittstock/Dosse, Stadt
    ("Köthen in Anhalt", "15082180"),  # Köthen (Anhalt), Stadt
    ("Naumburg an der Saale", "15084355"),  # Naumburg (Saale), Stadt
    ("Bernburg Saale", "15089030"),  # Bernburg (Saale), Stadt
    ("Kempten im Allgäu", "09763000"),  # Kempten (Allgäu)
    ("Lindau am Bodensee", "09776116"),  # Lindau (Bodensee), GKSt
    ("Oldenburg Oldb", "03403000"),  # Oldenburg (Oldb), Stadt
    ("Frankenberg an der Eder", "06635011"),  # Frankenberg (Eder), Philipp-Soldan-Stadt
    ("Frankenberg in Sachsen", "14522150"),  # Frankenberg/Sa., Stadt, Garnisonsstadt
    ("Brandenburg an der Havel", "12051000"),  # Brandenburg an der Havel, Stadt
    ("Rheinfelden in Baden", "08336069"),  # Rheinfelden (Baden), Stadt
    ("Heppenheim an der Bergstraße", "06431011"),  # Heppenheim (Bergstraße), Kreisstadt
    ("Hennef an der Sieg", "05382020"),  # Hennef (Sieg), Stadt
    ("Werder an der Havel", "12069656"),  # Werder (Havel), Stadt
    ("Singen am Hohentwiel", "08335075"),  # Singen (Hohentwiel), Stadt
    ("Ehingen an der Donau", "08425033"),  # Ehingen (Donau), Stadt
    ("Leer in Ostfriesland", "03457013"),  # Leer (Ostfriesland), Stadt
    # the bare name, meaning the largest town of that name
    ("Frankfurt", "06412000"),  # Frankfurt am Main, Stadt
    ("Halle", "15002000"),  # Halle (Saale), Stadt
    ("Freiburg", "08311000"),  # Freiburg im Breisgau, Stadt
    ("Mühlhausen", "16064046"),  # Mühlhausen/Thüringen, Stadt
    ("Brandenburg", "12051000"),  # Brandenburg an der Havel, Stadt
    ("Neumarkt", "09373147"),  # Neumarkt i.d.OPf., GKSt
    ("Weiden", "09363000"),  # Weiden i.d.OPf.
    ("Lindau", "09776116"),  # Lindau (Bodensee), GKSt
    ("Landsberg", "09181130"),  # Landsberg am Lech, GKSt
    ("Rothenburg", "09571193"),  # Rothenburg ob der Tauber, GKSt
    ("Oldenburg", "03403000"),  # Oldenburg (Oldb), Stadt
    ("Offenbach", "06413000"),  # Offenbach am Main, Stadt
    ("Ludwigshafen", "07314000"),  # Ludwigshafen am Rhein, Stadt
    ("Mülheim", "05117000"),  # Mülheim an der Ruhr, Stadt
    ("Landau", "07313000"),  # Landau in der Pfalz, Stadt
    ("Limburg", "06533009"),  # Limburg a. d. Lahn, Kreisstadt
    ("Neustadt Weinstraße", "07316000"),  # Neustadt an der Weinstraße, Stadt
    ("Weilheim", "09190157"),  # Weilheim i.OB, St
    ("Pfaffenhofen", "09186143"),  # Pfaffenhofen a.d.Ilm, St
    ("Mühldorf", "09183128"),  # Mühldorf a.Inn, St
    ("Wasserburg", "09187182"),  # Wasserburg a.Inn, St
    # Sankt and St.
    ("St Ingbert", "10045117"),  # St. Ingbert, Stadt
    ("Sankt Wendel", "10046117"),  # St. Wendel, Kreisstadt
    ("St. Georgen im Schwarzwald", "08326052"),  # St. Georgen im Schwarzwald, Stadt
    ("St Blasien", "08337097"),  # St. Blasien, Stadt
    ("Sankt Leon-Rot", "08226103"),  # St. Leon-Rot
    ("Sankt Egidien", "14524280"),  # St. Egidien
    ("St. Augustin", "05382056"),  # Sankt Augustin, Stadt
    # without umlauts, with typos (towns of the academy's pilot phase among them)
    ("Dissen am Ammersee", "09181114"),  # Dießen am Ammersee, M
    ("Bad Toelz", "09173112"),  # Bad Tölz, St
    ("Schluechtern", "06435025"),  # Schlüchtern, Stadt
    ("Zwoenitz", "14521710"),  # Zwönitz, Stadt
    ("Muennerstadt", "09672135"),  # Münnerstadt, St
    ("Grossraeschen", "12066112"),  # Großräschen/Rań, Stadt
    ("Moelln", "01053090"),  # Mölln, Stadt
    ("Wittenbrge", "12070424"),  # Wittenberge, Stadt
    ("Dippoldiswald", "14628060"),  # Dippoldiswalde, Stadt
    ("Oestrich-Winkl", "06439012"),  # Oestrich-Winkel, Stadt
    ("Eilenbrug", "14730110"),  # Eilenburg, Stadt
    ("Brunsbüttl", "01051011"),  # Brunsbüttel, Stadt
    ("Doerentrup", "05766024"),  # Dörentrup
    ("Freyung", "09272118"),  # Freyung, St
    ("Bad Lobensteim", "16075062"),  # Bad Lobenstein, Stadt
    ("Muecheln", "15088235"),  # Mücheln (Geiseltal), Stadt
    ("Rodewish", "14523360"),  # Rodewisch, Stadt
    ("Osterburg Altmark", "15090415"),  # Osterburg (Altmark), Hansestadt
    ("Demmin", "13071029"),  # Demmin, Hansestadt
    ("Boenen", "05978008"),  # Bönen
    ("Wurzen", "14729410"),  # Wurzen, Stadt
    # abbreviations as people type them
    ("Garmisch Partenkirchen", "09180117"),  # Garmisch-Partenkirchen, M
    ("Neustadt/Aisch", "09575153"),  # Neustadt a.d.Aisch, St
    ("Neustadt a. d. Aisch", "09575153"),  # Neustadt a.d.Aisch, St
    ("Pfaffenhofen a.d. Ilm", "09186143"),  # Pfaffenhofen a.d.Ilm, St
    ("Weiden i. d. OPf.", "09363000"),  # Weiden i.d.OPf.
    ("Neumarkt/Opf.", "09373147"),  # Neumarkt i.d.OPf., GKSt
    ("Mühldorf/Inn", "09183128"),  # Mühldorf a.Inn, St
    # other everyday forms: bilingual towns, Neustadt and friends, 'am Rhein' added
    ("Hann. Münden", "03159017"),  # Hann. Münden, Stadt
    ("Hannoversch Münden", "03159017"),  # Hann. Münden, Stadt
    ("Bautzen", "14625020"),  # Bautzen / Budyšin, Stadt, Hochschulstadt / Wysokošulske město
    ("Cottbus", "12052000"),  # Cottbus/Chóśebuz, Stadt
    ("Hoyerswerda", "14625240"),  # Hoyerswerda / Wojerecy, Stadt
    ("Senftenberg", "12066304"),  # Senftenberg/Zły Komorow, Stadt
    ("Spremberg", "12071372"),  # Spremberg/Grodk, Stadt
    ("Kamenz", "14625250"),  # Kamenz / Kamjenc, Stadt
    ("Burg im Spreewald", "12071032"),  # Burg (Spreewald)/Bórkowy (Błota)
    ("Neustadt in Holstein", "01055032"),  # Neustadt in Holstein, Stadt
    ("Neustadt bei Coburg", "09473151"),  # Neustadt b.Coburg, GKSt
    ("Neustadt am Rübenberge", "03241012"),  # Neustadt am Rübenberge, Stadt
    ("Neustadt an der Orla", "16075073"),  # Neustadt an der Orla, Stadt
    ("Schwäbisch Gmünd", "08136065"),  # Schwäbisch Gmünd, Stadt
    ("Schwäbisch Hall", "08127076"),  # Schwäbisch Hall, Stadt
    ("Villingen-Schwenningen", "08326074"),  # Villingen-Schwenningen, Stadt
    ("Idar-Oberstein", "07134045"),  # Idar-Oberstein, Stadt
    ("Lübeck", "01003000"),  # Lübeck, Hansestadt
    ("Wolfenbüttel", "03158037"),  # Wolfenbüttel, Stadt
    ("Bad Kissingen", "09672114"),  # Bad Kissingen, GKSt
    ("Stralsund", "13073088"),  # Stralsund, Hansestadt
    ("Weiden Oberpfalz", "09363000"),  # Weiden i.d.OPf.
    ("Rothenburg ob der Tauber", "09571193"),  # Rothenburg ob der Tauber, GKSt
    ("Rothenburg o.d.T.", "09571193"),  # Rothenburg ob der Tauber, GKSt
    ("Frankenthal Pfalz", "07311000"),  # Frankenthal (Pfalz), Stadt
    ("Eisenberg Pfalz", "07333019"),  # Eisenberg (Pfalz), Stadt
    ("Mainburg", "09273147"),  # Mainburg, St
    ("Herrsching am Ammersee", "09188124"),  # Herrsching a.Ammersee
    ("Weil am Rhein", "08336091"),  # Weil am Rhein, Stadt
    ("Kehl am Rhein", "08317057"),  # Kehl, Stadt
    ("Bingen am Rhein", "07339005"),  # Bingen am Rhein, Stadt
    ("Boppard am Rhein", "07140501"),  # Boppard, Stadt
    ("Wertheim am Main", "08128131"),  # Wertheim, Stadt
]


def held_out(query: str) -> bool:
    """The fixed half never used for tuning: decided by the query text alone."""
    return hashlib.sha256(query.encode("utf-8")).digest()[0] % 2 == 1


TUNING = [(q, ags) for q, ags in QUERIES if not held_out(q)]
HELD_OUT = [(q, ags) for q, ags in QUERIES if held_out(q)]
