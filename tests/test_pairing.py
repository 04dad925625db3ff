"""The pairing rules of ``!tandem vorschlagen``, without database or Matrix."""

from commands.pairing import Candidate, size_band, suggest_pairs


def person(user, kreis, population=12_000, topics=("wohnen",), ags=None):
    return Candidate(
        f"@{user}:example.org", ags or f"ags-{user}", user.title(), kreis, population, frozenset(topics)
    )


def pairs(found):
    return {frozenset((s.a.user_id, s.b.user_id)) for s in found}


def test_pairs_people_who_share_a_topic_and_says_why():
    a, b = person("anna", "Prignitz"), person("ben", "Siegen-Wittgenstein")
    [s] = suggest_pairs([a, b], active=set(), past=set())
    assert {s.a.user_id, s.b.user_id} == {a.user_id, b.user_id}
    assert s.topic == "wohnen"
    codes = [r.code for r in s.reasons]
    assert codes[:4] == ["shared_topic", "same_band", "different_kreis", "never_paired"]


def test_no_shared_topic_no_pair():
    a = person("anna", "Prignitz", topics=("wohnen",))
    b = person("ben", "Siegen-Wittgenstein", topics=("mobilitaet",))
    assert suggest_pairs([a, b], active=set(), past=set()) == []


def test_never_two_towns_of_the_same_kreis():
    a, b = person("anna", "Prignitz"), person("ben", "Prignitz")
    assert suggest_pairs([a, b], active=set(), past=set()) == []
    c = person("carla", "Kelheim")
    found = suggest_pairs([a, b, c], active=set(), past=set())
    assert len(found) == 1 and c.user_id in {found[0].a.user_id, found[0].b.user_id}


def test_never_repeats_a_past_pair_of_people_or_towns():
    a, b = person("anna", "Prignitz"), person("ben", "Kelheim")
    assert suggest_pairs([a, b], active=set(), past={frozenset((a.user_id, b.user_id))}) == []
    # a new mayor of the same town: the towns had a tandem already
    assert suggest_pairs([a, b], active=set(), past={frozenset(("ags:" + a.ags, "ags:" + b.ags))}) == []


def test_no_suggestion_on_a_topic_with_an_open_tandem():
    a = person("anna", "Prignitz", topics=("wohnen", "klima"))
    b = person("ben", "Kelheim", topics=("wohnen", "klima"))
    found = suggest_pairs([a, b], active={(a.user_id, "wohnen")}, past=set())
    assert [s.topic for s in found] == ["klima"]
    assert suggest_pairs([a, b], active={(a.user_id, "wohnen"), (b.user_id, "klima")}, past=set()) == []


def test_prefers_the_same_size_band():
    small = person("anna", "Prignitz", population=6_000)
    big = person("ben", "Kelheim", population=18_000)
    small2 = person("carla", "Coburg", population=7_500)
    [s] = suggest_pairs([small, big, small2], active=set(), past=set())
    assert pairs([s]) == {frozenset((small.user_id, small2.user_id))}
    assert s.band_distance == 0


def test_far_size_bands_are_not_paired():
    village = person("anna", "Prignitz", population=1_000)
    city = person("ben", "Kelheim", population=400_000)
    assert suggest_pairs([village, city], active=set(), past=set()) == []


def test_everyone_at_most_once_and_topic_filter():
    people = [person(f"p{i}", f"Kreis {i}", topics=("wohnen", "klima")) for i in range(6)]
    found = suggest_pairs(people, active=set(), past=set())
    users = [u for s in found for u in (s.a.user_id, s.b.user_id)]
    assert len(found) == 3 and len(users) == len(set(users))
    only = suggest_pairs(people, active=set(), past=set(), topic="klima", limit=2)
    assert len(only) == 2 and {s.topic for s in only} == {"klima"}
    assert any(r.code == "also_shared" and r.data["topics"] == ["wohnen"] for r in only[0].reasons)


def test_size_bands_follow_bbsr_limits():
    assert size_band(4_999) == "landgemeinde"
    assert size_band(5_000) == "kleine_kleinstadt"
    assert size_band(19_999) == "groessere_kleinstadt"
    assert size_band(20_000) == "mittelstadt"
    assert size_band(None) is None


def test_two_thousand_profiles_follow_the_rules():
    topics = ["innenstadt", "wohnen", "mobilitaet", "klima", "digitalisierung"]
    people = [
        person(
            f"m{i:04d}",
            f"Kreis {i % 300}",
            population=3_000 + (i * 37) % 40_000,
            topics=(topics[i % 5], topics[(i * 3 + 1) % 5]),
        )
        for i in range(2000)
    ]
    past = {frozenset((people[i].user_id, people[i + 1].user_id)) for i in range(0, 2000, 2)}
    found = suggest_pairs(people, active=set(), past=past, limit=50)
    assert len(found) == 50
    for s in found:
        assert s.a.kreis != s.b.kreis
        assert frozenset((s.a.user_id, s.b.user_id)) not in past
        assert s.topic in s.a.topics & s.b.topics
