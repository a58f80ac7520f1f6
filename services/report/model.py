"""The shape of the results report: the numbers, without any way of showing them.

Counts keyed by a vocabulary value (focus area, region, size, ...) list only the values
that occur, sorted by key. Shares are fractions in [0, 1], or None when there is nothing
to divide by.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

Counts = dict[str, int]


class NeedsSection(BaseModel):
    total: int = Field(description="Needs published in the window (their latest state)")
    open: int
    closed: int
    cosigned: int = Field(description="Needs with at least one co-signing buyer group")
    by_focus_area: Counts
    by_region: Counts = Field(
        description="NUTS code; a need with several regions counts in each (names: report.names)"
    )
    by_cpv: Counts = Field(
        default_factory=dict, description="CPV code (8 digits); a need with several codes counts in each"
    )
    by_procedure: Counts
    by_authority_level: Counts = Field(description="Needs with an authority of that level behind them")


class AuthorityRow(BaseModel):
    name: str
    org_number: str
    level: str
    region: str = Field(description="NUTS code")


class AuthoritiesSection(BaseModel):
    """From the needs service's operator API: authorities are not carried by events."""

    total: int = Field(description="Authorities registered in the window")
    by_level: Counts
    in_groups_by_level: Counts = Field(
        description="Distinct authorities that are members of a buyer group in the window, by level"
    )
    by_region: Counts = Field(
        default_factory=dict, description="Authorities registered in the window, by NUTS code"
    )
    in_groups: list[AuthorityRow] = Field(
        default_factory=list, description="The authorities in buyer groups of the window, by name"
    )


class BuyerGroupsSection(BaseModel):
    total: int = Field(description="Buyer groups created in the window")
    by_focus_area: Counts
    by_authority_level: Counts = Field(description="Groups with a member authority of that level")
    member_authorities: int = Field(description="Member places summed over the groups")
    authorities: AuthoritiesSection | None = Field(
        default=None, description="None when the needs service's operator API was not asked"
    )


class SuppliersSection(BaseModel):
    total: int = Field(description="Suppliers registered in the window and not removed")
    removed: int = Field(description="Suppliers removed in the window")
    by_size: Counts
    by_company_type: Counts
    by_supplier_type: Counts = Field(
        description="services.contracts.vocab.supplier_types; one supplier counts in each type it is"
    )
    by_trl: Counts
    by_focus_area: Counts


class SupplierShares(BaseModel):
    """Who the matched or alerted suppliers are."""

    suppliers: int = Field(description="Distinct suppliers")
    known: int = Field(description="Of those, suppliers whose profile is known (not removed)")
    by_supplier_type: Counts
    sme_share: float | None = Field(description="Share of known suppliers that are SMEs")
    startup_share: float | None = Field(
        description="Share of known suppliers that are young companies (start-ups)"
    )


class MatchesSection(BaseModel):
    total: int = Field(description="Distinct need-supplier matches first found in the window")
    active: int
    withdrawn: int
    by_day: Counts = Field(description="Matches first found, per UTC day")
    by_hour: Counts = Field(description="Matches first found, per UTC hour (YYYY-MM-DDTHH)")
    matched_suppliers: SupplierShares = Field(description="Suppliers of the active matches counted")
    needs_with_matches: int = Field(
        default=0, description="Needs published in the window with at least one active match"
    )
    needs_with_sme_or_startup_in_top10: int = Field(
        default=0,
        description="Of those, needs with an SME or a start-up among their 10 best active matches",
    )
    sme_or_startup_in_top10_share: float | None = Field(
        default=None, description="needs_with_sme_or_startup_in_top10 / needs_with_matches"
    )
    judged_precision_top10: dict[str, JudgedPrecision] = Field(
        default_factory=dict,
        description="By the need's focus area: the buyers' verdicts on the matches among each "
        "need's 10 best, as precision",
    )


class JudgedPrecision(BaseModel):
    judged: int = Field(description="Matches among needs' 10 best that their buyers judged")
    relevant: int = Field(description="Of those, judged relevant, contacted or selected")
    precision: float | None = Field(description="relevant / judged; None before any verdict")


class AlertsSection(BaseModel):
    total: int = Field(description="Distinct alerts (recipient, match, channel) in the window")
    delivered: int
    failed: int
    by_channel: Counts = Field(description="Delivered alerts per channel")
    by_recipient_kind: Counts = Field(description="Delivered alerts: supplier or buyer_group")
    by_day: Counts = Field(description="Delivered alerts per UTC day")
    by_hour: Counts = Field(description="Delivered alerts per UTC hour (YYYY-MM-DDTHH)")
    alerted_suppliers: SupplierShares = Field(
        description="The suppliers the delivered alerts were about (through the match)"
    )


class DialogueAnswers(BaseModel):
    invited: int = Field(description="Distinct suppliers of this kind invited to a dialogue")
    answered: int = Field(description="Of those, suppliers that answered a dialogue they were invited to")
    share: float | None = Field(description="answered / invited; None when none was invited")


class DialoguesSection(BaseModel):
    """Market dialogues opened in the window, and whether the invited suppliers answered: asked
    a question or sent a response (accepted, declined or gave written input)."""

    total: int = Field(default=0, description="Dialogues opened in the window")
    invited: DialogueAnswers = Field(
        default_factory=lambda: DialogueAnswers(invited=0, answered=0, share=None),
        description="Every invited supplier (by supplier_ids or shortlist_top; not those that joined)",
    )
    smes: DialogueAnswers = Field(
        default_factory=lambda: DialogueAnswers(invited=0, answered=0, share=None),
        description="Invited suppliers that are SMEs",
    )
    startups: DialogueAnswers = Field(
        default_factory=lambda: DialogueAnswers(invited=0, answered=0, share=None),
        description="Invited suppliers that are young firms (start-ups)",
    )
    smes_or_startups: DialogueAnswers = Field(
        default_factory=lambda: DialogueAnswers(invited=0, answered=0, share=None),
        description="Invited suppliers that are SMEs or young firms",
    )


class Report(BaseModel):
    generated_at: datetime
    since: datetime | None
    needs: NeedsSection
    buyer_groups: BuyerGroupsSection
    suppliers: SuppliersSection
    matches: MatchesSection
    alerts: AlertsSection
    dialogues: DialoguesSection = Field(default_factory=DialoguesSection)
    events_read: int = Field(description="Records read from the topics")
    records_skipped: int = Field(description="Records that were not valid events and were left out")
