"""Whatever a caller sends as a credential, the answer is a clean refusal, never a crash."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.governance import AuthenticationError, GovernanceSettings, authenticate
from steward.store import Store, StoreSettings

_TOKENISH = st.one_of(
    st.text(max_size=120),
    st.builds(lambda t: "stw_" + t, st.text(max_size=90)),
    st.builds(lambda t: "Bearer stw_" + t, st.text(alphabet="0123456789abcdef_-Az", max_size=90)),
    st.builds(
        lambda a, b, c: f"{a}.{b}.{c}",
        st.text(max_size=40),
        st.text(max_size=40),
        st.text(max_size=40),
    ),
)


@pytest.fixture(scope="module")
def required() -> GovernanceSettings:
    return GovernanceSettings(user="root", auth="required")


@pytest.fixture(scope="module")
def empty_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store.open(StoreSettings(home=tmp_path_factory.mktemp("home"), user="root"))
    store.initialize()
    yield store
    store.close()


@settings(max_examples=300, deadline=None)
@given(credential=_TOKENISH)
def test_any_credential_is_refused_cleanly(
    empty_home: Store, required: GovernanceSettings, credential: str
) -> None:
    with pytest.raises(AuthenticationError) as refusal:
        authenticate(empty_home, credential, required)
    message = str(refusal.value)
    assert message
    secret = credential.strip()
    assert len(secret) < 12 or secret not in message  # the credential is never echoed
