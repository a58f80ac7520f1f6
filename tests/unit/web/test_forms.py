from services.web import forms


def test_api_field_paths_map_to_the_form_fields_that_hold_them() -> None:
    errors = forms.field_errors(
        {
            "capabilities.cpv_codes[1]": "12345678 is not a CPV 2008 code",
            "capabilities.cpv_codes[2]": "later reason",
            "org_number": "check digit does not match",
            "alerts.min_score": "must be at most 1",
            "respond_by": "must be after today",
        }
    )
    assert errors == {
        "cpv_codes": "12345678 is not a CPV 2008 code",
        "org_number": "check digit does not match",
        "min_score": "must be at most 1",
        "respond_by": "must be after today",
    }


def test_a_registration_form_becomes_the_api_body() -> None:
    form = {
        "org_number": [" 556036-0793 "],
        "name": ["Lekbolaget AB"],
        "size": ["micro"],
        "company_type": ["industrial"],
        "founded_year": ["2021"],
        "contact_email": ["hej@lekbolaget.se"],
        "cpv_codes": ["37535200-9", "37535200-9", "45000000"],
        "keywords": ["lekplatser, gungor"],
        "regions": ["SE11", "SE12"],
        "trl": ["7"],
        "min_score": ["0,5"],
        "open_to_consortia": ["on"],
    }
    body = forms.supplier_body(form, registering=True)
    assert body["org_number"] == "556036-0793"
    assert body["founded_year"] == 2021
    assert body["capabilities"]["cpv_codes"] == ["37535200-9", "45000000"]
    assert body["capabilities"]["keywords"] == ["lekplatser", "gungor"]
    assert body["capabilities"]["trl"] == 7
    assert body["capabilities"]["open_to_consortia"] is True
    assert body["alerts"] == {"email": None, "language": "sv", "mode": "instant", "min_score": 0.5}
    assert "org_number" not in forms.supplier_body(form, registering=False)


def test_what_cannot_be_converted_is_sent_as_typed_for_the_service_to_name() -> None:
    body = forms.need_body({"min_trl": ["sju"], "budget_sek": ["12 000 000"], "respond_by": [""]})
    assert body["min_trl"] == "sju"
    assert body["budget_sek"] == 12_000_000
    assert body["respond_by"] is None


def test_a_stored_supplier_fills_its_form_again() -> None:
    supplier = {
        "org_number": "556036-0793",
        "name": "Lekbolaget AB",
        "capabilities": {"cpv_codes": ["37535200"], "keywords": ["a", "b"], "trl": 7, "regions": ["SE11"]},
        "alerts": {"email": None, "language": "en", "mode": "daily", "min_score": 0.4},
    }
    form = forms.supplier_form(supplier)
    assert form["keywords"] == ["a, b"]
    assert form["alert_language"] == ["en"] and form["alert_email"] == [""]
    body = forms.supplier_body(form, registering=False)
    assert body["capabilities"]["keywords"] == ["a", "b"]
    assert body["alerts"]["min_score"] == 0.4
