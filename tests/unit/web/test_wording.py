from services.web import wording

EXPLANATION = {
    "components": {"cpv": 0.35, "text": 0.1, "focus_area": 0.1, "supplier_type": 0.0, "semantic": 0.2},
    "shared_cpv": [
        {"code": "37535200", "label_sv": "Lekplatsutrustning", "label_en": "Playground equipment"}
    ],
    "matched_terms": ["lekplatser", "gungor"],
    "region_verdict": "serves SE11, the need is in SE110",
    "trl_verdict": "TRL 7 meets the required 6",
    "semantic_verdict": "close in meaning (0.62; cosine 0.861)",
}


def test_an_explanation_reads_in_swedish_without_codes_for_regions() -> None:
    explained = wording.explain(EXPLANATION, "sv")
    assert explained.sentences == [
        "Gemensamma CPV-områden: 37535200-9 Lekplatsutrustning.",
        "Ord som båda texterna använder: lekplatser, gungor.",
        "Leverantören är verksam i Stockholm, och behovet gäller Stockholms län.",
        "Lösningens mognadsgrad, TRL 7, uppfyller kravet TRL 6.",
        "Texterna ligger nära varandra i innebörd.",
    ]
    assert [name for name, _ in explained.parts] == [
        "CPV-koder",
        "innebörd i texterna",
        "gemensamma ord",
        "fokusområde",
    ]


def test_an_explanation_reads_in_english() -> None:
    explained = wording.explain(EXPLANATION, "en")
    assert explained.sentences[0] == "Shared CPV areas: 37535200-9 Playground equipment."
    assert explained.sentences[2] == "The supplier works in Stockholm, and the need is in Stockholms län."
    assert explained.sentences[3] == "The solution's maturity, TRL 7, meets the required TRL 6."


def test_the_reasons_for_no_match_in_words() -> None:
    region = "region: serves SE23, SE21, the need is in SE11: no overlap"
    assert wording.why_not_sentence(region, "sv") == (
        "Leverantören är verksam i Västsverige, Småland med öarna, "
        "behovet gäller Stockholm: ingen överlappning."
    )
    assert wording.why_not_sentence("maturity: TRL 4 is below the required 6", "en") == (
        "The solution's maturity, TRL 4, falls short of the required TRL 6."
    )
    below = "score 0.21 is below the threshold 0.30; weakest component: semantic"
    assert wording.why_not_sentence(below, "sv") == (
        "Poängen 0.21 är under gränsen 0.30 för en matchning; svagast är innebörd i texterna."
    )
    assert wording.why_not_sentence(None, "sv") is None


def test_a_verdict_in_an_unknown_wording_is_shown_as_it_came() -> None:
    assert wording.region_sentence("somewhere else entirely", "sv") == "somewhere else entirely"
    assert wording.semantic_sentence("new wording", "en") == "new wording"


def test_vocabulary_labels_in_both_languages() -> None:
    assert wording.label("procedure", "pre_commercial", "sv") == "Förkommersiell upphandling"
    assert wording.label("procedure", "pre_commercial", "en") == "Pre-commercial procurement"
    assert wording.label("procedure", "unknown", "sv") == "unknown"
    assert wording.region_names(["SE", "SE110"]) == "Sverige, Stockholms län"


def test_validation_reasons_of_the_services_read_in_swedish() -> None:
    assert wording.reason("Field required", "sv") == "Fältet måste fyllas i."
    assert wording.reason("check digit does not match: is a digit mistyped?", "sv") == (
        "Kontrollsiffran stämmer inte: är en siffra felskriven?"
    )
    assert wording.reason("region SE99 is not a Swedish NUTS code", "sv") == "SE99 är inte en svensk region."
    assert wording.reason("Input should be less than or equal to 1", "sv") == "Värdet ska vara högst 1."
    assert wording.reason("respond_by must be after today (2026-11-23)", "sv") == (
        "Datumet måste vara efter i dag (2026-11-23)."
    )
    assert wording.reason("Field required", "en") == "Field required"
    assert wording.reason("something new", "sv") == "something new"
