"""PostgreSQL specifics: opening a schema, and every failure reported by cause with advice.

Only our own ``meta`` table with another version may advise dropping the schema; a missing
server, database or privilege, a foreign schema, a lost connection each say what to do
instead, and no message ever shows the password.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from lashspec.kernel.clock import FakeProcessTable, ManualClock
from lashspec.kernel.errors import SchemaVersionMismatch
from lashspec.kernel.types import Acquired, LeaseOwnerIdentity, NextTurn, PendingTurnInputDraft
from lashspec.kernel.types import TurnInput as Input

from tests.conftest import SchemaPool, drop_schema

psycopg = pytest.importorskip("psycopg")
from lashspec.kernel.errors import StoreServerError  # noqa: E402
from lashspec.kernel.postgres import PostgresStore, server_error  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: E402


@pytest.fixture
def fresh(postgres_dsn: str) -> Iterator[tuple[str, str]]:
    """A schema name nobody has used, dropped afterwards (these tests damage schemas)."""
    name = f"lashspec_s_{uuid.uuid4().hex[:12]}"
    yield postgres_dsn, name
    drop_schema(postgres_dsn, name)


def _admin(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(dsn, autocommit=True)


def _with(dsn: str, **changes: str) -> str:
    return make_conninfo(dsn, **changes)


def test_first_open_creates_the_schema_and_a_reopen_sees_the_rows(
    fresh: tuple[str, str],
) -> None:
    dsn, name = fresh
    first = PostgresStore(dsn, ManualClock(), FakeProcessTable(), schema=name)
    draft = PendingTurnInputDraft("root", NextTurn(), Input.text("kept"), "key")
    row = first.enqueue_pending_turn_input(draft)
    first.close()
    second = PostgresStore(dsn, ManualClock(), FakeProcessTable(), schema=name)
    try:
        assert second.list_pending_turn_inputs("root") == [row]
        assert second.enqueue_pending_turn_input(draft) == row, "source key replays after reopen"
    finally:
        second.close()


def test_another_schema_version_advises_dropping_the_schema_and_changes_nothing(
    fresh: tuple[str, str],
) -> None:
    dsn, name = fresh
    PostgresStore(dsn, schema=name).close()
    meta = sql.Identifier(name, "meta")
    with _admin(dsn) as admin:
        admin.execute(
            sql.SQL("UPDATE {} SET value = '99' WHERE key = 'schema_version'").format(meta)
        )
        with pytest.raises(SchemaVersionMismatch) as raised:
            PostgresStore(dsn, schema=name)
        message = str(raised.value)
        assert raised.value.actual == 99 and raised.value.expected == 1
        assert "DROP SCHEMA" in message and name in message and "file" not in message
        row = admin.execute(
            sql.SQL("SELECT value FROM {} WHERE key = 'schema_version'").format(meta)
        ).fetchone()
        assert row == ("99",), "the refused schema was changed"


def test_a_schema_of_someone_else_is_refused_and_left_untouched(fresh: tuple[str, str]) -> None:
    dsn, name = fresh
    with _admin(dsn) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(name, "users")))
        with pytest.raises(StoreServerError) as raised:
            PostgresStore(dsn, schema=name)
        assert raised.value.cause == "not-a-lashspec-schema"
        assert "users" in str(raised.value) and "another schema name" in str(raised.value)
        assert "DROP" not in str(raised.value)
        tables = admin.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (name,)
        ).fetchall()
        assert tables == [("users",)]


def test_a_missing_database_says_create_it(postgres_dsn: str) -> None:
    with pytest.raises(StoreServerError) as raised:
        PostgresStore(_with(postgres_dsn, dbname="lashspec_no_such_database"))
    assert raised.value.cause == "no-database" and "createdb" in str(raised.value)
    assert "DROP" not in str(raised.value)


def test_an_unreachable_server_is_cannot_connect_and_never_shows_the_password(
    postgres_dsn: str, tmp_path: object
) -> None:
    dsn = _with(postgres_dsn, host=f"/nonexistent-{uuid.uuid4().hex}", password="s3cret-pw")
    with pytest.raises(StoreServerError) as raised:
        PostgresStore(dsn, connect_timeout_s=2)
    assert raised.value.cause == "cannot-connect" and raised.value.retryable
    assert "s3cret-pw" not in str(raised.value)
    assert "server is running" in str(raised.value)


def test_a_role_without_create_privilege_is_told_what_to_grant(postgres_dsn: str) -> None:
    role = f"lashspec_limited_{uuid.uuid4().hex[:8]}"
    with _admin(postgres_dsn) as admin:
        try:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        except psycopg.errors.InsufficientPrivilege:
            pytest.skip("postgres: the test server's user may not create roles")
        try:
            with pytest.raises(StoreServerError) as raised:
                PostgresStore(_with(postgres_dsn, user=role), schema=f"lashspec_{role}")
            assert raised.value.cause == "permission"
            assert "grant" in str(raised.value) and "DROP" not in str(raised.value)
        finally:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_terminated_connection_is_reported_then_the_next_call_reconnects(
    postgres_schemas: SchemaPool,
) -> None:
    name = postgres_schemas.take()
    clock = ManualClock()
    store = PostgresStore(postgres_schemas.dsn, clock, FakeProcessTable(), schema=name)
    try:
        who = LeaseOwnerIdentity.opaque("holder")
        outcome = store.try_claim_session_execution_lease("root", who, 60_000)
        assert isinstance(outcome, Acquired)
        with _admin(postgres_schemas.dsn) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (store.backend_pid(),))
        with pytest.raises(StoreServerError) as raised:
            store.renew_session_execution_lease(outcome.lease.fence(), 60_000)
        assert raised.value.cause == "connection-lost" and raised.value.retryable
        renewed = store.renew_session_execution_lease(outcome.lease.fence(), 60_000)
        assert renewed.fencing_token == outcome.lease.fencing_token
    finally:
        store.close()
        postgres_schemas.give_back(name)


def test_a_connection_lost_during_commit_is_an_unknown_outcome(postgres_dsn: str) -> None:
    """Losing the connection while COMMIT is in flight cannot say whether it applied."""
    connection = psycopg.connect(postgres_dsn, autocommit=True)
    connection.close()
    error = server_error(
        "x",
        psycopg.OperationalError("the connection is closed"),
        "committing",
        connection=connection,
        during_commit=True,
    )
    assert isinstance(error, StoreServerError)
    assert error.cause == "commit-outcome-unknown" and error.retryable
    assert "reload" in str(error) and "idempotent" in str(error)


def test_two_schemas_are_two_stores_with_their_own_write_locks(
    postgres_schemas: SchemaPool,
) -> None:
    names = [postgres_schemas.take(), postgres_schemas.take()]
    stores = [PostgresStore(postgres_schemas.dsn, schema=n, lock_timeout_ms=200) for n in names]
    try:
        assert stores[0].write_lock_key != stores[1].write_lock_key
        with _admin(postgres_schemas.dsn) as holder:
            holder.execute("BEGIN")
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (stores[0].write_lock_key,))
            draft = PendingTurnInputDraft("root", NextTurn(), Input.text("free"))
            row = stores[1].enqueue_pending_turn_input(draft)  # not blocked by the other lock
            holder.execute("ROLLBACK")
        assert stores[1].list_pending_turn_inputs("root") == [row]
        assert stores[0].list_pending_turn_inputs("root") == []
    finally:
        for store, name in zip(stores, names, strict=True):
            store.close()
            postgres_schemas.give_back(name)


def test_the_server_description_names_user_host_and_database_only(postgres_dsn: str) -> None:
    dsn = _with(postgres_dsn, password="hunter2")
    assert conninfo_to_dict(dsn)["password"] == "hunter2"
    from lashspec.kernel.postgres import describe_server

    described = describe_server(dsn, "s")
    assert "hunter2" not in described and "schema 's'" in described
