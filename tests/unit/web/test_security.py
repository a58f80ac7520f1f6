from services.web import security


def test_a_csrf_token_is_tied_to_its_session_and_key() -> None:
    sid = security.new_secret()
    token = security.csrf_token("key", sid)
    assert security.csrf_valid("key", sid, token)
    assert not security.csrf_valid("key", security.new_secret(), token)  # another session
    assert not security.csrf_valid("other-key", sid, token)
    assert not security.csrf_valid("key", sid, None)
    assert not security.csrf_valid("key", None, token)
    assert not security.csrf_valid("key", sid, token[:-1] + ("0" if token[-1] != "0" else "1"))


def test_secrets_are_random_and_only_their_digest_is_kept() -> None:
    a, b = security.new_secret(), security.new_secret()
    assert a != b and security.looks_like_secret(a)
    assert security.digest(a) != a and len(security.digest(a)) == 64
    assert security.digest(a) == security.digest(a)


def test_anything_that_new_secret_could_not_make_is_refused_early() -> None:
    assert not security.looks_like_secret("")
    assert not security.looks_like_secret("x" * 42)
    assert not security.looks_like_secret("a" * 42 + "/")
    assert not security.looks_like_secret("' OR 1=1 --" + "a" * 32)
