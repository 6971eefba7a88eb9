"""pgaudit on the local primary: what it logs, read back from the server's log.

scripts/services.sh preloads pgaudit when its package is installed (.ci/run
installs it) and sends the server's log to var/log/primary.log. Object
auditing logs what shop_auditor holds privileges on
(pgaudit_object_grants_v01.sql in shop/accounts/sql/audit/ and
orders/sql/audit/); session auditing logs DDL
and role changes. Without pgaudit, or away from the local cluster, these
tests skip and say why.
"""

import uuid

import pytest
from django.db import connections, transaction
from django.test import override_settings

from shop import pgaudit
from shop.accounts.services import customer_tax_id_set
from tests.accounts.factories import CustomerFactory

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


@pytest.fixture
def logged_since_start():
    """A function: the AUDIT entries naming a marker (or all text) since the start."""
    if not pgaudit.loaded():
        pytest.skip(
            "pgaudit is not loaded: install it (Debian: apt-get install "
            "postgresql-15-pgaudit) and run scripts/services.sh up, which adds "
            "it to shared_preload_libraries and restarts the primary"
        )
    path = pgaudit.server_log()
    if path is None:
        pytest.skip("no var/log/primary.log: not the local cluster of services.sh")
    start = pgaudit.log_end(path)

    def entries(marker=None):
        if marker is None:  # the whole log, AUDIT entries or not
            return pgaudit.log_text(path, start)
        return pgaudit.audit_entries(path, start, marker)

    return entries


def run(sql, params=None, using="default"):
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)


def test_reading_the_encrypted_tax_id_is_logged_by_object_and_the_phone_is_not(
    logged_since_start,
):
    marker = f"probe-{uuid.uuid4().hex}"
    run(f"SELECT tax_id_encrypted FROM accounts_customer WHERE '{marker}' <> ''")
    run(f"SELECT phone FROM accounts_customer WHERE '{marker}-phone' <> ''")

    (entry,) = logged_since_start(marker)
    assert "AUDIT: OBJECT," in entry
    assert ",READ,SELECT,TABLE,public.accounts_customer," in entry
    assert f"{marker}-phone" not in entry  # the column grant chose tax ids only


@override_settings(FIELD_ENCRYPTION_KEYS="7:pgaudit-must-never-see-this-key")
def test_a_tax_id_write_is_logged_without_its_key_or_plaintext(logged_since_start):
    customer = CustomerFactory()
    customer_tax_id_set(customer_id=customer.pk, tax_id="GB-SECRET-TAX-ID")

    (write,) = logged_since_start("pgp_sym_encrypt")
    assert "AUDIT: OBJECT," in write
    assert ",WRITE,UPDATE,TABLE,public.accounts_customer," in write
    # Bound server-side (shop/crypto.py) and pgaudit.log_parameter = off.
    everything = logged_since_start()
    assert "pgaudit-must-never-see-this-key" not in everything
    assert "GB-SECRET-TAX-ID" not in everything


def test_ddl_is_logged_for_every_session(logged_since_start):
    table = f"lab_pgaudit_{uuid.uuid4().hex[:12]}"
    with transaction.atomic(using="owner"):
        run(f"CREATE TABLE {table} (id integer)", using="owner")
        transaction.set_rollback(True, using="owner")

    (entry,) = logged_since_start(table)
    assert "AUDIT: SESSION," in entry
    assert ",DDL,CREATE TABLE," in entry
