"""Contract tests of the artifact store: a local folder and a real S3 server, sealed or not."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steward.core import (
    BackendUnavailableError,
    ConfigurationError,
    EncryptionKeyError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)
from steward.store import (
    ArtifactInfo,
    ContentAddressedStore,
    KeyRing,
    StoreSettings,
    download_artifact,
    key_id_of,
    open_artifact_store,
    open_key_provider,
)
from steward.store._crypto import HEADER_SIZE, SEGMENT_SIZE, TAG_SIZE
from steward.store.backends import LocalBlobBackend

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the caller's STEWARD_* variables and steward.toml out of these tests."""
    for name in list(os.environ):
        if name.startswith("STEWARD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- where the bytes are: raw access behind the store's back --------------------------------


class RawObjects(Protocol):
    def names(self) -> dict[str, int]: ...
    def read(self, name: str) -> bytes: ...
    def write(self, name: str, data: bytes) -> None: ...


@dataclass
class LocalRaw:
    root: Path

    def names(self) -> dict[str, int]:
        return {
            p.relative_to(self.root).as_posix(): p.stat().st_size
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def write(self, name: str, data: bytes) -> None:
        (self.root / name).write_bytes(data)


@dataclass
class S3Raw:
    client: Any
    bucket: str
    prefix: str

    def names(self) -> dict[str, int]:
        found: dict[str, int] = {}
        pages = self.client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/"):
            for item in page.get("Contents", []):
                found[item["Key"][len(self.prefix) + 1 :]] = item["Size"]
        return found

    def read(self, name: str) -> bytes:
        body = self.client.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{name}")["Body"]
        return bytes(body.read())

    def write(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{name}", Body=data)


@dataclass
class Location:
    kind: str
    uri: str
    raw: RawObjects
    endpoint_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def settings(self, **overrides: Any) -> StoreSettings:
        return StoreSettings(artifact_uri=self.uri, s3_endpoint_url=self.endpoint_url, **overrides)

    def open(self, **overrides: Any) -> ContentAddressedStore:
        store = open_artifact_store(self.settings(**overrides))
        assert isinstance(store, ContentAddressedStore)
        return store

    def objects(self) -> dict[str, int]:
        """Published artifact objects (not uploads in progress)."""
        return {k: v for k, v in self.raw.names().items() if k.startswith("sha256/")}


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    if request.param == "local":
        root = tmp_path / "artifacts"
        return Location("local", str(root), LocalRaw(root))
    server = request.getfixturevalue("s3_server")
    prefix = server.new_prefix()
    return Location(
        "s3",
        f"s3://{server.bucket}/{prefix}",
        S3Raw(server.client, server.bucket, prefix),
        endpoint_url=server.endpoint_url,
    )


@pytest.fixture
def master_key() -> bytes:
    return os.urandom(32)


@pytest.fixture(params=[False, True], ids=["plain", "sealed"])
def store(request: pytest.FixtureRequest, location: Location, master_key: bytes) -> Any:
    if request.param:
        return location.open(encrypt_artifacts=True, master_key=b64(master_key))
    return location.open()


def object_name(location: Location, digest: str) -> str:
    (name,) = [n for n in location.objects() if digest in n]
    return name


def flip_byte(location: Location, name: str, offset: int) -> None:
    data = bytearray(location.raw.read(name))
    data[offset] ^= 0x01
    location.raw.write(name, bytes(data))


class PatternStream(io.RawIOBase):
    """``size`` pseudo-random bytes made on the fly, never held at once; hashes what it gives."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.counter = 0
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), self.remaining, 64 * 1024)
        if size == 0:
            return 0
        block = hashlib.sha256(self.counter.to_bytes(8, "big")).digest() * (size // 32 + 1)
        self.counter += 1
        buffer[:size] = block[:size]
        self.hash.update(block[:size])
        self.remaining -= size
        return size


# --- the contract: every backend, sealed or not ------------------------------------------------


def test_put_get_round_trip_from_bytes_file_and_path(store: Any, tmp_path: Path) -> None:
    data = os.urandom(3 * MiB + 17)
    source = tmp_path / "model.bin"
    source.write_bytes(data)

    infos = [store.put(data), store.put(io.BytesIO(data)), store.put(source)]

    assert {info.digest for info in infos} == {sha(data)}
    assert infos[0] == ArtifactInfo(
        sha(data),
        len(data),
        encrypted=store.encrypt,
        key_id=store.keys.current()[0] if store.encrypt else None,
    )
    assert store.get(sha(data)) == data
    assert store.info(sha(data)) == infos[0]


def test_put_accepts_the_empty_artifact(store: Any) -> None:
    info = store.put(b"")

    assert info.digest == sha(b"")
    assert info.size == 0
    assert store.get(info.digest) == b""
    assert store.info(info.digest).size == 0


def test_put_same_bytes_twice_stores_them_once(store: Any, location: Location) -> None:
    data = os.urandom(2 * MiB)
    store.put(data)
    before = location.objects()

    again = store.put(io.BytesIO(data))

    assert again.digest == sha(data)
    assert location.objects() == before
    assert len(before) == 1
    assert not [n for n in location.raw.names() if n.startswith("tmp/")]


def test_open_streams_the_bytes_in_pieces(store: Any) -> None:
    data = os.urandom(2 * MiB + 3)
    info = store.put(data)

    with store.open(info.digest) as stream:
        pieces = list(iter(lambda: stream.read(100_000), b""))

    assert b"".join(pieces) == data
    assert max(len(p) for p in pieces) <= 100_000


def test_download_writes_the_verified_file(store: Any, tmp_path: Path) -> None:
    data = os.urandom(MiB + 5)
    info = store.put(data)

    (tmp_path / "downloads").mkdir()

    path = download_artifact(store, info.digest, tmp_path / "downloads" / "out.bin")

    assert path.read_bytes() == data
    assert [p.name for p in path.parent.iterdir()] == ["out.bin"]


def test_exists_and_delete(store: Any) -> None:
    info = store.put(b"short-lived")
    assert store.exists(info.digest)

    store.delete(info.digest)

    assert not store.exists(info.digest)
    with pytest.raises(NotFoundError, match=info.digest):
        store.get(info.digest)
    with pytest.raises(NotFoundError, match=info.digest):
        store.delete(info.digest)


def test_list_yields_every_artifact_in_digest_order(store: Any) -> None:
    blobs = [b"a", b"bb", os.urandom(MiB + 1), b""]
    expected = sorted((store.put(b) for b in blobs), key=lambda i: i.digest)

    listed = list(store.list())

    assert listed == expected
    assert [i.size for i in listed] == [len(b) for b in sorted(blobs, key=sha)]


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_flipped_byte_is_detected_on_every_read_path(
    store: Any, location: Location, tmp_path: Path, where: str
) -> None:
    data = os.urandom(2 * MiB + 100)
    info = store.put(data)
    name = object_name(location, info.digest)
    size = location.raw.names()[name]
    flip_byte(location, name, {"start": 0, "middle": size // 2, "end": size - 1}[where])
    target = tmp_path / "downloads" / "model.bin"
    target.parent.mkdir()
    target.write_bytes(b"previous version")

    with pytest.raises(IntegrityError, match=info.digest):
        store.get(info.digest)
    with pytest.raises(IntegrityError, match=info.digest), store.open(info.digest) as stream:
        stream.read()
    with pytest.raises(IntegrityError, match=info.digest):
        download_artifact(store, info.digest, target)

    assert target.read_bytes() == b"previous version"
    assert [p.name for p in target.parent.iterdir()] == ["model.bin"]


def test_stream_keeps_failing_after_a_digest_mismatch(store: Any, location: Location) -> None:
    info = store.put(b"x" * 1000)
    name = object_name(location, info.digest)
    flip_byte(location, name, location.raw.names()[name] - 1)

    stream = store.open(info.digest)
    with pytest.raises(IntegrityError):
        stream.read()
    with pytest.raises(IntegrityError):  # a second read must not pass for a clean end of file
        stream.read(10)
    stream.close()


@pytest.mark.parametrize(
    "digest",
    ["", "abc", "A" * 64, "g" * 64, "a" * 63, "a" * 65, "sha256:" + "a" * 64, None, 42],
)
def test_malformed_digest_is_invalid_input(store: Any, digest: Any) -> None:
    for call in (store.get, store.open, store.exists, store.delete, store.info):
        with pytest.raises(InvalidInputError, match="64 lowercase hex"):
            call(digest)


def test_missing_digest_is_not_found(store: Any, location: Location) -> None:
    digest = sha(b"never stored")

    for call in (store.get, store.open, store.info):
        with pytest.raises(NotFoundError, match=digest):
            call(digest)
    assert not store.exists(digest)


def test_put_refuses_str_and_text_files(store: Any, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")

    with pytest.raises(InvalidInputError, match=r"pathlib\.Path"):
        store.put(str(tmp_path / "notes.txt"))
    with (
        pytest.raises(InvalidInputError, match="binary mode"),
        open(tmp_path / "notes.txt", encoding="utf-8") as text,
    ):
        store.put(text)
    with pytest.raises(InvalidInputError, match="int"):
        store.put(42)


def test_failed_put_leaves_nothing_behind(store: Any, location: Location) -> None:
    class Broken(io.RawIOBase):
        calls = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            self.calls += 1
            if self.calls > 3:
                raise OSError("disk went away")
            buffer[: len(buffer)] = b"z" * len(buffer)
            return len(buffer)

    with pytest.raises(OSError, match="disk went away"):
        store.put(Broken())

    assert location.objects() == {}
    assert not [n for n in location.raw.names() if n.startswith("tmp/")]


@settings(
    max_examples=25,
    deadline=None,
    # One store serves every example: content addressing makes earlier examples harmless.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=4096))
def test_round_trip_property(store: Any, data: bytes) -> None:
    info = store.put(data)

    assert info.digest == sha(data)
    assert store.get(info.digest) == data


def test_large_artifact_streams_in_bounded_memory(
    store: Any, location: Location, tmp_path: Path
) -> None:
    size = 64 * MiB
    source = PatternStream(size)

    tracemalloc.start()
    try:
        info = store.put(io.BufferedReader(source, buffer_size=MiB))
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        read = hashlib.sha256()
        with store.open(info.digest) as stream:
            while chunk := stream.read(MiB):
                read.update(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert info.digest == source.hash.hexdigest()
    assert info.size == size
    assert read.hexdigest() == info.digest
    # Bounded by the chunk (local) or by one 8 MiB upload part / read-ahead block (S3, with
    # the client library's copies), never by the 64 MiB of the file.
    limit = 8 * MiB if location.kind == "local" else 40 * MiB
    assert put_peak < limit, f"put held {put_peak / MiB:.1f} MiB for a {size // MiB} MiB file"
    assert read_peak < limit, f"open held {read_peak / MiB:.1f} MiB for a {size // MiB} MiB file"


# --- sealing: keys, rotation, tampering ---------------------------------------------------------


def test_wrong_key_gives_a_clear_error_never_bytes(location: Location) -> None:
    right, wrong = os.urandom(32), os.urandom(32)
    info = location.open(encrypt_artifacts=True, master_key=b64(right)).put(b"secret weights")
    other = location.open(master_key=b64(wrong))

    for read in (other.get, lambda d: other.open(d).read()):
        with pytest.raises(EncryptionKeyError) as caught:
            read(info.digest)
        message = str(caught.value)
        assert key_id_of(right) in message
        assert key_id_of(wrong) in message
        assert b64(right) not in message


def test_sealed_artifact_needs_a_key_to_read(location: Location) -> None:
    key = os.urandom(32)
    info = location.open(encrypt_artifacts=True, master_key=b64(key)).put(b"secret")

    with pytest.raises(EncryptionKeyError, match="STEWARD_MASTER_KEY"):
        location.open().get(info.digest)


def test_sealed_bytes_do_not_contain_the_plaintext(location: Location) -> None:
    data = b"very recognisable plaintext " * 1000
    store = location.open(encrypt_artifacts=True, master_key=b64(os.urandom(32)))
    info = store.put(data)

    stored = location.raw.read(object_name(location, info.digest))

    assert b"recognisable" not in stored
    assert len(stored) == HEADER_SIZE + len(data) + TAG_SIZE


def test_key_rotation_keeps_old_artifacts_readable(location: Location, tmp_path: Path) -> None:
    old, new = os.urandom(32), os.urandom(32)
    key_file = tmp_path / "master.keys"
    key_file.write_text(f"{b64(old)}\n")
    before = location.open(encrypt_artifacts=True, master_key_file=key_file).put(b"v1")

    key_file.write_text(f"# newest first\n{b64(new)}\n\n{b64(old)}\n")
    rotated = location.open(encrypt_artifacts=True, master_key_file=key_file)
    after = rotated.put(b"v2")

    assert before.key_id == key_id_of(old)
    assert after.key_id == key_id_of(new)
    assert rotated.get(before.digest) == b"v1"
    assert rotated.get(after.digest) == b"v2"
    key_file.write_text(f"{b64(new)}\n")
    with pytest.raises(EncryptionKeyError, match=key_id_of(old)):
        location.open(master_key_file=key_file).get(before.digest)


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda n: HEADER_SIZE - 1, id="inside-header"),
        pytest.param(lambda n: HEADER_SIZE, id="header-only"),
        pytest.param(lambda n: HEADER_SIZE + SEGMENT_SIZE + TAG_SIZE, id="segment-boundary"),
        pytest.param(lambda n: HEADER_SIZE + SEGMENT_SIZE // 2, id="mid-segment"),
        pytest.param(lambda n: n - 1, id="last-byte"),
    ],
)
def test_truncated_sealed_object_is_detected(location: Location, cut: Any) -> None:
    store = location.open(encrypt_artifacts=True, master_key=b64(os.urandom(32)))
    info = store.put(os.urandom(2 * SEGMENT_SIZE + 10))
    name = object_name(location, info.digest)
    stored = location.raw.read(name)
    location.raw.write(name, stored[: cut(len(stored))])

    with pytest.raises(IntegrityError, match=info.digest):
        store.get(info.digest)


def test_reordered_segments_are_detected(location: Location) -> None:
    store = location.open(encrypt_artifacts=True, master_key=b64(os.urandom(32)))
    info = store.put(os.urandom(3 * SEGMENT_SIZE))
    name = object_name(location, info.digest)
    stored = location.raw.read(name)
    block = SEGMENT_SIZE + TAG_SIZE
    head, first, second, rest = (
        stored[:HEADER_SIZE],
        stored[HEADER_SIZE : HEADER_SIZE + block],
        stored[HEADER_SIZE + block : HEADER_SIZE + 2 * block],
        stored[HEADER_SIZE + 2 * block :],
    )
    location.raw.write(name, head + second + first + rest)

    with pytest.raises(IntegrityError, match="segment 0"):
        store.get(info.digest)


def test_sealing_replaces_a_plaintext_copy(location: Location) -> None:
    info = location.open().put(b"model")
    sealed = location.open(encrypt_artifacts=True, master_key=b64(os.urandom(32)))

    again = sealed.put(b"model")

    assert again.encrypted
    assert list(location.objects()) == [f"sha256/{info.digest[:2]}/{info.digest}.sealed"]
    assert sealed.get(info.digest) == b"model"


def test_same_bytes_under_two_keys_are_stored_once(location: Location) -> None:
    first = location.open(encrypt_artifacts=True, master_key=b64(os.urandom(32)))
    second = location.open(encrypt_artifacts=True, master_key=b64(os.urandom(32)))
    plain = location.open()

    a = first.put(b"shared")
    b = second.put(b"shared")
    c = plain.put(b"shared")

    assert a == b == c
    assert len(location.objects()) == 1


# --- configuration fails fast, naming the setting -------------------------------------------


@pytest.mark.parametrize("uri", ["ftp://host/artifacts", "gs://bucket/x", "http://example.com"])
def test_unknown_scheme_names_the_setting_and_the_valid_ones(uri: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_artifact_store(StoreSettings(artifact_uri=uri))

    message = str(caught.value)
    assert "STEWARD_ARTIFACT_URI" in message
    assert uri in message
    assert "s3://bucket" in message
    assert "file:///" in message


def test_file_url_and_home_default_open_local_folders(tmp_path: Path) -> None:
    by_url = open_artifact_store(StoreSettings(artifact_uri=(tmp_path / "a").as_uri()))
    by_home = open_artifact_store(StoreSettings(home=tmp_path / "home"))

    by_url.put(b"x")
    by_home.put(b"y")

    assert (tmp_path / "a" / "sha256" / sha(b"x")[:2] / sha(b"x")).read_bytes() == b"x"
    assert (tmp_path / "home" / "artifacts" / "sha256" / sha(b"y")[:2] / sha(b"y")).is_file()


def test_file_url_with_a_host_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"STEWARD_ARTIFACT_URI.*file:///"):
        open_artifact_store(StoreSettings(artifact_uri="file://server/share/artifacts"))


def test_unwritable_folder_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")

    with pytest.raises(ConfigurationError, match=r"STEWARD_ARTIFACT_URI.*writable"):
        open_artifact_store(StoreSettings(artifact_uri=str(blocker / "artifacts")))
    with pytest.raises(ConfigurationError, match=r"STEWARD_HOME.*writable"):
        open_artifact_store(StoreSettings(home=blocker / "home"))


def test_read_only_folder_names_the_setting(tmp_path: Path) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        try:
            (folder / "probe").write_bytes(b"")
        except PermissionError:
            pass
        else:
            pytest.skip("permission bits do not stop this user from writing (root?)")
        with pytest.raises(ConfigurationError, match=r"STEWARD_ARTIFACT_URI.*Permission denied"):
            open_artifact_store(StoreSettings(artifact_uri=str(folder)))
    finally:
        folder.chmod(stat.S_IRWXU)


def test_encryption_without_a_key_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="STEWARD_MASTER_KEY"):
        open_artifact_store(StoreSettings(home=tmp_path, encrypt_artifacts=True))
    assert not (tmp_path / "artifacts").exists()


@pytest.mark.parametrize(
    ("value", "problem"),
    [("not base64!", "not valid base64"), (b64(os.urandom(16)), "16 bytes")],
)
def test_malformed_master_key_names_the_variable(tmp_path: Path, value: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=f"STEWARD_MASTER_KEY.*{problem}"):
        open_artifact_store(StoreSettings(home=tmp_path, master_key=value))


def test_master_key_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = os.urandom(32)
    monkeypatch.setenv("STEWARD_MASTER_KEY", b64(key))
    monkeypatch.setenv("STEWARD_ENCRYPT_ARTIFACTS", "true")
    monkeypatch.setenv("STEWARD_ARTIFACT_URI", str(tmp_path / "env-artifacts"))

    info = open_artifact_store(StoreSettings()).put(b"from env")

    assert info.key_id == key_id_of(key)


@pytest.mark.s3
def test_missing_bucket_names_the_setting(s3_server: Any) -> None:
    settings_ = StoreSettings(
        artifact_uri="s3://no-such-bucket/x", s3_endpoint_url=s3_server.endpoint_url
    )

    with pytest.raises(ConfigurationError, match=r"STEWARD_ARTIFACT_URI.*no-such-bucket"):
        open_artifact_store(settings_)


@pytest.mark.s3
def test_unreachable_endpoint_is_backend_unavailable(s3_server: Any) -> None:
    closed = "http://127.0.0.1:9"  # discard port: nothing listens there
    settings_ = StoreSettings(artifact_uri="s3://steward-test/x", s3_endpoint_url=closed)

    with pytest.raises(BackendUnavailableError) as caught:
        open_artifact_store(settings_)

    assert closed in str(caught.value)
    assert "s3://steward-test/x" in str(caught.value)
    assert "STEWARD_S3_ENDPOINT_URL" in str(caught.value)


def test_key_provider_needs_no_key_when_not_encrypting(tmp_path: Path) -> None:
    assert open_key_provider(StoreSettings(home=tmp_path)) is None


def test_store_refuses_encrypt_without_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="STEWARD_ENCRYPT_ARTIFACTS"):
        ContentAddressedStore(LocalBlobBackend(tmp_path), encrypt=True)
    assert ContentAddressedStore(
        LocalBlobBackend(tmp_path), keys=KeyRing([os.urandom(32)], source="test"), encrypt=True
    ).encrypt
