"""The whole lifecycle through the Python API: generate, verify, list,
revoke, rotate, with the errors a request handler sees."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

import apikeys
from apikeys import (
    Forbidden,
    InvalidArgument,
    KeyStore,
    StoreClosed,
    Unauthorized,
    UnknownKey,
    http_answer,
)

from conftest import PEPPER


def test_generate_returns_a_well_formed_secret_and_its_public_info(store: KeyStore) -> None:
    key = store.generate("Production", env="prod", scopes=["contacts:read", "deals:*"], owner="team-a")
    assert key.secret.startswith("flz_sk_prod_")
    assert apikeys.is_well_formed(key.secret)
    assert KeyStore.is_well_formed(key.secret)
    info = key.info
    assert info.id == key.id and len(info.id) == 16
    assert info.name == "Production"
    assert info.env == "prod"
    assert info.scopes == ("contacts:read", "deals:*")
    assert info.owner == "team-a"
    assert info.status == "active"
    assert info.hint.startswith(key.secret[: len("flz_sk_prod_") + 4])
    assert key.secret not in info.hint
    assert info.created_at.tzinfo == timezone.utc
    assert info.expires_at is None and info.revoked_at is None and info.last_used is None
    assert info.use_count == 0
    assert info.rotated_from is None and info.rotated_to is None


def test_generated_key_repr_leaves_the_secret_out(store: KeyStore) -> None:
    key = store.generate("Logged")
    assert key.secret not in repr(key)
    assert key.id in repr(key)


def test_verify_accepts_the_key_and_reports_who_it_is(store: KeyStore) -> None:
    key = store.generate("Billing", env="prod", scopes=["contacts:*"], owner="acct-42")
    verified = store.verify(key.secret)
    assert verified.id == key.id
    assert verified.name == "Billing"
    assert verified.env == "prod"
    assert verified.scopes == ("contacts:*",)
    assert verified.owner == "acct-42"
    assert verified.expires_at is None
    # contacts:* covers every scope under contacts:
    assert store.verify(key.secret, scope="contacts:write").id == key.id


def test_verify_without_the_scope_is_forbidden_with_a_403(store: KeyStore) -> None:
    key = store.generate("Read only", scopes=["contacts:read"])
    with pytest.raises(Forbidden) as raised:
        store.verify(key.secret, scope="contacts:write")
    assert raised.value.status == 104
    status, body, headers = http_answer(raised.value)
    assert status == 403
    assert headers == (("Content-Type", "application/json"), ("WWW-Authenticate", 'Bearer error="insufficient_scope"'))
    assert json.loads(body) == {
        "success": False,
        "error": {"code": "FORBIDDEN", "message": "API key does not have the required permissions"},
    }


def test_malformed_and_unknown_keys_are_unauthorized_with_one_401_body(
    store: KeyStore, unknown_key: str
) -> None:
    with pytest.raises(Unauthorized) as malformed:
        store.verify("flz_sk_prod_not-a-key")
    assert malformed.value.reason == "malformed"
    with pytest.raises(Unauthorized) as unknown:
        store.verify(unknown_key)
    assert unknown.value.reason == "not_found"
    answers = {http_answer(malformed.value), http_answer(unknown.value)}
    assert len(answers) == 1, "the client must not learn why the key was refused"
    status, body, headers = answers.pop()
    assert status == 401
    assert body == '{"success":false,"error":{"code":"UNAUTHORIZED","message":"Invalid or missing API key"}}'
    assert headers == (("Content-Type", "application/json"), ("WWW-Authenticate", "Bearer"))


def test_a_typo_in_a_real_key_is_malformed(store: KeyStore) -> None:
    secret = store.generate("Typo").secret
    last = secret[-1]
    typo = secret[:-1] + ("A" if last != "A" else "B")
    assert not apikeys.is_well_formed(typo)
    with pytest.raises(Unauthorized) as raised:
        store.verify(typo)
    assert raised.value.reason == "malformed"


def test_verify_header_reads_a_bearer_token(store: KeyStore) -> None:
    key = store.generate("Header", scopes=["contacts:read"])
    assert store.verify_header(f"Bearer {key.secret}").id == key.id
    assert store.verify_header(f"bearer {key.secret}", scope="contacts:read").id == key.id
    with pytest.raises(Forbidden):
        store.verify_header(f"Bearer {key.secret}", scope="admin")
    for header in (None, "", f"Basic {key.secret}", "Bearer", f"Bearer {key.secret} extra"):
        with pytest.raises(Unauthorized) as raised:
            store.verify_header(header)
        assert raised.value.reason == "bad_header", header
        assert http_answer(raised.value)[0] == 401


def test_list_reports_use_counts_and_dates_after_flush(store: KeyStore) -> None:
    used = store.generate("Used", env="prod")
    idle = store.generate("Idle", env="dev")
    for _ in range(3):
        store.verify(used.secret)
    store.flush()
    by_id = {info.id: info for info in store.list()}
    assert set(by_id) == {used.id, idle.id}
    assert by_id[used.id].use_count == 3
    assert by_id[used.id].last_used is not None
    assert by_id[used.id].last_used.tzinfo == timezone.utc
    assert by_id[idle.id].use_count == 0
    assert by_id[idle.id].last_used is None
    assert isinstance(by_id[idle.id].created_at, datetime)


def test_list_filters_by_status_and_by_unused_since(store: KeyStore) -> None:
    kept = store.generate("Kept")
    gone = store.generate("Gone")
    store.verify(kept.secret)
    store.revoke(gone.id)
    store.flush()
    assert [k.id for k in store.list(status="active")] == [kept.id]
    assert [k.id for k in store.list(status="revoked")] == [gone.id]
    assert store.list(status="expired") == []
    # A cut-off far in the future: every key counts as unused since then.
    far_future = datetime.now(timezone.utc) + timedelta(days=3650)
    assert {k.id for k in store.list(unused_since=far_future)} == {kept.id, gone.id}
    # A cut-off before both were created: neither has been unused that long
    # (a never-used key counts from its creation).
    long_ago = datetime(2001, 1, 1, tzinfo=timezone.utc)
    assert store.list(unused_since=long_ago) == []


def test_revoke_is_immediate_idempotent_and_answers_401(store: KeyStore) -> None:
    key = store.generate("Leaky")
    store.verify(key.secret)
    assert store.revoke(key.id) is True
    assert store.revoke(key.id) is False
    with pytest.raises(Unauthorized) as raised:
        store.verify(key.secret)
    assert raised.value.reason == "revoked"
    assert raised.value.status == 102
    assert http_answer(raised.value)[0] == 401
    (info,) = store.list()
    assert info.status == "revoked"
    assert info.revoked_at is not None


def test_revoke_by_the_secret_itself(store: KeyStore) -> None:
    key = store.generate("Leaked on GitHub")
    assert store.revoke_key(key.secret) is True
    assert store.revoke_key(key.secret) is False
    with pytest.raises(Unauthorized) as raised:
        store.verify(key.secret)
    assert raised.value.reason == "revoked"


def test_revoking_an_unknown_key_says_so(store: KeyStore, unknown_key: str) -> None:
    with pytest.raises(UnknownKey) as by_id:
        store.revoke("0000000000000000")
    assert by_id.value.status == 3 and by_id.value.detail
    with pytest.raises(UnknownKey):
        store.revoke_key(unknown_key)


def test_rotate_keeps_the_old_key_alive_during_the_grace_period(store: KeyStore) -> None:
    old = store.generate("Rotating", env="prod", scopes=["contacts:read"], owner="o")
    new = store.rotate(old.id, grace_seconds=86400)
    assert new.id != old.id and new.secret != old.secret
    assert new.info.rotated_from == old.id
    assert new.info.name == "Rotating" and new.info.env == "prod"
    assert new.info.scopes == ("contacts:read",) and new.info.owner == "o"
    assert store.verify(new.secret, scope="contacts:read").id == new.id
    assert store.verify(old.secret).id == old.id
    old_info = next(k for k in store.list() if k.id == old.id)
    assert old_info.rotated_to == new.id
    assert old_info.expires_at is not None


def test_rotate_without_grace_expires_the_old_key_at_once(store: KeyStore) -> None:
    old = store.generate("Compromised")
    new = store.rotate(old.id, grace_seconds=timedelta(0))
    with pytest.raises(Unauthorized) as raised:
        store.verify(old.secret)
    assert raised.value.reason == "expired"
    assert store.verify(new.secret).id == new.id
    with pytest.raises(InvalidArgument):
        store.rotate(old.id)  # an expired key cannot be rotated again


def test_generate_with_an_expiry(store: KeyStore) -> None:
    expires = datetime(2100, 1, 1, tzinfo=timezone.utc)
    key = store.generate("Temporary", expires_at=expires)
    assert key.info.expires_at == expires
    assert store.verify(key.secret).expires_at == expires
    with pytest.raises(InvalidArgument):
        store.generate("Already over", expires_at=datetime(2001, 1, 1, tzinfo=timezone.utc))


def test_keys_survive_close_and_reopen(store_path: str) -> None:
    with KeyStore(store_path, pepper=PEPPER) as first:
        key = first.generate("Durable")
    with KeyStore(store_path, pepper=PEPPER) as second:
        assert second.verify(key.secret).name == "Durable"


def test_a_closed_store_refuses_calls(store_path: str) -> None:
    with KeyStore(store_path, pepper=PEPPER) as store:
        pass
    assert store.closed
    store.close()  # twice is fine
    with pytest.raises(StoreClosed):
        store.generate("late")
    with pytest.raises(StoreClosed):
        store.verify("flz_sk_whatever")


def test_version_is_the_library_version() -> None:
    assert apikeys.version() == "0.1.0"


def test_a_verified_key_is_an_ordinary_frozen_dataclass(store: KeyStore) -> None:
    import dataclasses
    from datetime import datetime, timezone

    from apikeys import VerifiedKey

    expiry = datetime(2099, 1, 1, tzinfo=timezone.utc)
    key = store.generate("Built", env="prod", scopes=["contacts:read", "billing:*"], owner="team", expires_at=expiry)
    verified = store.verify(key.secret)
    expected = VerifiedKey(
        id=key.id, name="Built", env="prod", scopes=("contacts:read", "billing:*"), owner="team", expires_at=expiry
    )
    assert verified == expected and hash(verified) == hash(expected) and repr(verified) == repr(expected)
    assert dataclasses.asdict(verified) == dataclasses.asdict(expected)
    with pytest.raises(dataclasses.FrozenInstanceError):
        verified.name = "changed"  # type: ignore[misc]
    bare = store.verify(store.generate("Bare").secret)
    assert (bare.env, bare.scopes, bare.owner, bare.expires_at) == (None, (), None, None)
