"""The report's three forms, the --since parser and skipping records that are not events."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from services.contracts import topics
from services.contracts.events import BuyerGroupCreated, MatchFound, NeedPublished, SupplierRegistered
from services.report.aggregate import Authority, build_report, fold
from services.report.build import parse_since
from services.report.model import Report
from services.report.render import chart_svg, render
from services.report.source import Read, parse_records
from tests.factories import supplier_registered, supplier_state
from tests.unit.report.test_aggregate import DAY1, DAY2, NOW, ev, group, match, need


def sample() -> Report:
    s = supplier_state(size="micro", founded_year=2024)
    events = [
        ev(SupplierRegistered, s, DAY1),
        ev(MatchFound, match("n1", s.id, DAY1), DAY1),
        ev(MatchFound, match("n2", s.id, DAY2), DAY2),
        ev(MatchFound, match("n3", s.id, DAY2), DAY2),
    ]
    return build_report(fold(events), since=None, now=NOW, skipped=1)


def test_json_is_the_structured_report() -> None:
    report = sample()
    parsed = json.loads(render(report, "json"))
    assert Report.model_validate(parsed) == report
    assert parsed["matches"]["by_day"] == {"2026-11-01": 1, "2026-11-20": 2}
    assert parsed["matches"]["matched_suppliers"]["startup_share"] == 1.0


def test_markdown_has_a_table_per_section() -> None:
    text = render(sample(), "md")
    for heading in ("## Needs", "## Buyer groups and authorities", "## Suppliers", "## Matches", "## Alerts"):
        assert heading in text
    assert "| Matches found | 3 |" in text
    assert "| Matched suppliers: share of young companies (start-ups) | 100.0 % |" in text
    assert "| Authorities | not available (needs service not asked) |" in text
    assert "## Market dialogues" in text
    assert "| Invited SMEs or young firms that answered (asked or responded) | 0 of 0 (-) |" in text


def test_html_is_self_contained_with_an_svg_chart() -> None:
    text = render(sample(), "html")
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text
    assert "<script" not in text and not re.search(r'(src|href)="http', text)
    assert '<td>Matches found</td><td class="n">3</td>' in text


def test_the_chart_scales_bars_to_the_highest_day() -> None:
    svg = chart_svg([("m", "#000", {"2026-11-01": 1, "2026-11-02": 4}), ("a", "#fff", {"2026-11-02": 2})])
    heights = [float(h) for h in re.findall(r'<rect x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)"', svg)]
    # Legend swatches are 12 high; then day 1 (m, a) and day 2 (m, a) on a 180-pixel plot.
    assert heights == [12, 12, 45.0, 0.0, 180.0, 90.0]
    assert "nothing in this period" in chart_svg([("m", "#000", {})])


def test_since_takes_a_date_or_a_date_time() -> None:
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T10:00:00+01:00") == datetime(2026, 11, 1, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a date"):
        parse_since("last week")
    assert UTC is UTC and timedelta(0) == timedelta()


def test_records_that_are_not_events_are_counted_and_left_out() -> None:
    good = supplier_registered().model_dump_json().encode()
    read = Read()
    parse_records(
        [
            (topics.SUPPLIERS, good),
            (topics.SUPPLIERS, b"{not json"),
            (topics.NEEDS, good),
            (topics.SUPPLIERS, None),  # a tombstone: no event, and nothing wrong
        ],
        read,
    )
    assert [type(e) for _, e in read.events] == [SupplierRegistered]
    assert read.skipped == 2


def test_the_chart_shows_every_period_between_the_first_and_the_last() -> None:
    svg = chart_svg([("m", "#000", {"2026-11-24T09": 1, "2026-11-24T12": 2})])
    assert svg.count("<title>m ") == 4  # 09, 10, 11 and 12 o'clock
    assert ">24/11 09h<" in svg and ">24/11 12h<" in svg
    far = chart_svg([("m", "#000", {"2020-01-01": 1, "2026-01-01": 1})])
    assert far.count("<title>m ") == 2  # years apart: only the days that occur


def test_html_charts_hours_when_everything_is_on_a_day_or_two() -> None:
    report = sample()
    assert report.matches.by_hour == {"2026-11-01T09": 1, "2026-11-20T09": 2}
    assert "<h2>Matches and alerts per day</h2>" in render(report, "html")  # 19 days apart
    s = supplier_state()
    near = [
        ev(SupplierRegistered, s, DAY1),
        ev(MatchFound, match("n1", s.id, DAY1), DAY1),
        ev(MatchFound, match("n2", s.id, DAY1 + timedelta(hours=20)), DAY1 + timedelta(hours=20)),
    ]
    html = render(build_report(fold(near), since=None, now=NOW), "html")
    assert "<h2>Matches and alerts per hour (UTC)</h2>" in html
    assert html.count("<title>Matches found ") == 21  # 09 on the first day to 05 on the next


def named_sample() -> Report:
    s = supplier_state(size="micro", founded_year=2024)
    a = need(DAY1, regions=["SE110", "SE232", "SE22"], cpv_codes=["31158100"])
    g = group(DAY1, member_authority_ids=["a1"])
    events = [
        ev(SupplierRegistered, s, DAY1),
        ev(NeedPublished, a, DAY1),
        ev(BuyerGroupCreated, g, DAY1),
        ev(MatchFound, match(a.id, s.id, DAY1), DAY1),
    ]
    authorities = [
        Authority("a1", "local", DAY1, name="Göteborgs kommun", org_number="212000-1355", region="SE232")
    ]
    return build_report(fold(events), since=None, now=NOW, authorities=authorities)


def test_the_html_report_shows_lan_names_and_swedish_cpv_labels() -> None:
    text = render(named_sample(), "html")
    assert "Stockholms län (SE110)" in text and "Västra Götalands län (SE232)" in text
    assert "Sydsverige, riksområde (SE22)" in text
    assert "Batteriladdningsdon (31158100)" in text
    assert "<h2>Needs per region</h2>" in text and "<h2>Needs per kind of product or service</h2>" in text
    # The region and CPV charts name what they count.
    assert re.search(r"<svg[^>]*aria-label=\"Needs per region\"", text)
    assert re.search(r"<title>Västra Götalands län \(SE232\): 1</title>", text)
    assert "Göteborgs kommun" in text


def test_markdown_names_regions_authorities_and_the_share_of_needs_reaching_small_firms() -> None:
    text = render(named_sample(), "md")
    assert "| By region: Stockholms län (SE110) | 1 |" in text
    assert "| By CPV code: Batteriladdningsdon (31158100) | 1 |" in text
    assert (
        "| In a buyer group: Göteborgs kommun (212000-1355) | local, Västra Götalands län (SE232) |" in text
    )
    assert (
        "| Needs with an SME or a young firm (start-up) among their 10 best matches | 1 of 1 (100.0 %) |"
        in text
    )


def test_vocabulary_values_are_words_and_the_html_leads_with_what_matching_did_for_small_firms() -> None:
    report = named_sample()
    md = render(report, "md")
    assert "| By focus area: transport | 1 |" in md
    assert "| By procedure: innovation partnership | 1 |" in md
    assert "| Matched suppliers by type: SME | 1 |" in md
    assert "| Matched suppliers by type: young firm (start-up) | 1 |" in md
    assert "_" not in "".join(line.split("|")[1] for line in md.splitlines() if line.startswith("| By "))
    html = render(report, "html")
    assert (
        "<p><strong>For small and young firms:</strong> 1 of 1 (100.0 %) needs with a match have an SME"
        " or a young firm (start-up) among their 10 best matches.</p>" in html
    )
    assert html.index("For small and young firms") < html.index("<svg")
    empty = render(build_report(fold([]), since=None, now=NOW), "html")
    assert "no need of this period has a match yet." in empty
