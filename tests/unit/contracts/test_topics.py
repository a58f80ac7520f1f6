from services.contracts import topics


def test_topic_names() -> None:
    assert topics.ALL_TOPICS == (
        "innomatch.suppliers.v1",
        "innomatch.needs.v1",
        "innomatch.buyer-groups.v1",
        "innomatch.matches.v1",
        "innomatch.alerts.v1",
        "innomatch.dialogues.v1",
    )


def test_dead_letter_topic() -> None:
    assert topics.dlq(topics.NEEDS) == "innomatch.needs.v1.dlq"
