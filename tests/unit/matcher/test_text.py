from services.matcher import text

NEED = (
    "Vi söker avloppsreningsverk med bättre kväverening. Reningsverket ska klara "
    "dagvatten vid skyfall, och reningen ska följas upp digitalt."
)


def test_a_texts_surface_forms_are_the_same_read_in_part_or_whole() -> None:
    wanted = [t for w in ("reningsverket", "dagvatten", "digitalt") for t in text.word_terms(w)][:4]
    first = text.first_surface_forms(NEED, wanted)  # read up to the last wanted word
    again = text.first_surface_forms(NEED, wanted)  # read whole and kept
    assert first == again
    assert set(first) == set(wanted)
    assert all(t in text.word_terms(w) for t, w in first.items())


def test_each_term_names_the_first_word_that_produced_it() -> None:
    terms = text.word_terms("reningsverket")
    found = text.first_surface_forms("reningsverket och reningsverk " + NEED + " nytt", terms)
    assert set(found.values()) == {"reningsverket"}
    assert text.first_surface_forms(NEED, []) == {}
    assert text.first_surface_forms(NEED, ["zzz-not-a-term"]) == {}
