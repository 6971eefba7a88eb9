"""A customer's tax id is encrypted at rest (pgcrypto) and its key can be rotated."""

import io
import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connections, transaction
from django.test import override_settings

from shop.accounts.selectors import customer_tax_id_get
from shop.accounts.services import customer_tax_id_set
from shop.crypto import execute_with_keys, parse_field_keys
from shop.errors import InvalidRequest, NotFound
from tests.accounts.factories import CustomerFactory
from tests.dbs import ALL_DATABASES

TAX_ID = "DE123456789"
WRONG_KEY_SQLSTATE = "39000"  # pgcrypto: "Wrong key or corrupt data"


def stored(customer_id):
    """The raw column as the app sees it: (ciphertext bytes, key id)."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT tax_id_encrypted, tax_id_key_id FROM accounts_customer "
            "WHERE id = %s",
            [customer_id],
        )
        encrypted, key_id = cursor.fetchone()
    return (bytes(encrypted) if encrypted is not None else None), key_id


def decrypt_with(customer_id, key):
    """Decrypt the stored tax id with an arbitrary key, bypassing the key id."""
    with transaction.atomic():
        _, rows = execute_with_keys(
            "SELECT pgp_sym_decrypt(tax_id_encrypted, %(key)s) "
            "FROM accounts_customer WHERE id = %(customer_id)s",
            {"customer_id": customer_id, "key": key},
        )
    return rows[0][0]


def assert_wrong_key(excinfo):
    assert excinfo.value.__cause__.sqlstate == WRONG_KEY_SQLSTATE
    assert "Wrong key or corrupt data" in str(excinfo.value)


@pytest.mark.django_db
def test_the_stored_bytes_do_not_contain_the_tax_id():
    customer = CustomerFactory()

    customer_tax_id_set(customer_id=customer.pk, tax_id=TAX_ID)

    encrypted, key_id = stored(customer.pk)
    assert key_id == 1
    assert TAX_ID.encode() not in encrypted


@pytest.mark.django_db
def test_a_tax_id_set_reads_back_in_clear_and_none_when_unset():
    customer, other = CustomerFactory(), CustomerFactory()

    customer_tax_id_set(customer_id=customer.pk, tax_id=f"  {TAX_ID} ")
    customer_tax_id_set(customer_id=other.pk, tax_id="FR1")
    customer_tax_id_set(customer_id=other.pk, tax_id="FR2")

    assert customer_tax_id_get(customer_id=customer.pk) == TAX_ID
    assert customer_tax_id_get(customer_id=other.pk) == "FR2"
    assert customer_tax_id_get(customer_id=CustomerFactory().pk) is None


@pytest.mark.django_db
def test_a_blank_tax_id_or_an_unknown_customer_is_refused():
    with pytest.raises(InvalidRequest) as blank:
        customer_tax_id_set(customer_id=CustomerFactory().pk, tax_id="  ")
    with pytest.raises(NotFound) as unknown:
        customer_tax_id_set(customer_id=0, tax_id=TAX_ID)

    assert blank.value.code == "invalid_tax_id"
    assert unknown.value.code == "not_found"


@pytest.mark.django_db
def test_another_key_cannot_decrypt_the_tax_id():
    customer = CustomerFactory()
    customer_tax_id_set(customer_id=customer.pk, tax_id=TAX_ID)

    with (
        override_settings(FIELD_ENCRYPTION_KEYS="1:some-other-secret"),
        pytest.raises(DatabaseError) as excinfo,
        transaction.atomic(),
    ):
        customer_tax_id_get(customer_id=customer.pk)

    assert_wrong_key(excinfo)


@pytest.mark.django_db
def test_the_database_refuses_ciphertext_without_its_key_id():
    customer = CustomerFactory()

    with (
        pytest.raises(IntegrityError, match="accounts_customer_tax_id_with_key_id"),
        transaction.atomic(),
        connections["default"].cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE accounts_customer SET tax_id_encrypted = '\\x00'::bytea "
            "WHERE id = %s",
            [customer.pk],
        )


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_rotation_moves_every_tax_id_to_the_current_key():
    on_old_key = [CustomerFactory() for _ in range(5)]
    with override_settings(FIELD_ENCRYPTION_KEYS="1:old"):
        for number, customer in enumerate(on_old_key):
            customer_tax_id_set(customer_id=customer.pk, tax_id=f"DE{number}")
    on_new_key = CustomerFactory()
    untouched = CustomerFactory()

    with override_settings(FIELD_ENCRYPTION_KEYS="2:new,1:old"):
        customer_tax_id_set(customer_id=on_new_key.pk, tax_id="NL1")
        before = stored(on_new_key.pk)
        # A batch smaller than the rows: several transactions.
        output = io.StringIO()
        call_command("rotate_field_keys", batch_size=2, stdout=output)

        assert "key 1 -> 2: 5 tax ids" in output.getvalue()

        for number, customer in enumerate(on_old_key):
            assert stored(customer.pk)[1] == 2
            assert customer_tax_id_get(customer_id=customer.pk) == f"DE{number}"
            assert decrypt_with(customer.pk, "new") == f"DE{number}"
            with pytest.raises(DatabaseError) as excinfo:
                decrypt_with(customer.pk, "old")
            assert_wrong_key(excinfo)
        # pgp_sym_encrypt salts every call: unchanged bytes mean not rewritten.
        assert stored(on_new_key.pk) == before
        assert stored(untouched.pk) == (None, None)

    # The old key can now leave the configuration.
    with override_settings(FIELD_ENCRYPTION_KEYS="2:new"):
        assert customer_tax_id_get(customer_id=on_old_key[0].pk) == "DE0"


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_a_tax_id_under_a_removed_key_says_how_to_recover():
    customer = CustomerFactory()
    with override_settings(FIELD_ENCRYPTION_KEYS="1:old"):
        customer_tax_id_set(customer_id=customer.pk, tax_id=TAX_ID)

    with (
        override_settings(FIELD_ENCRYPTION_KEYS="2:new"),
        pytest.raises(ImproperlyConfigured, match="rotate_field_keys"),
    ):
        customer_tax_id_get(customer_id=customer.pk)


def test_the_first_key_is_current_and_a_malformed_list_is_refused():
    assert list(parse_field_keys("2:new, 1:old:with-colon")) == [2, 1]
    assert parse_field_keys("2:new, 1:old:with-colon")[1] == "old:with-colon"
    for malformed in ("", "new", "x:new", "1:", "1:a,1:b", "0:zero", "40000:big"):
        with pytest.raises(ImproperlyConfigured):
            parse_field_keys(malformed)


def test_production_refuses_to_start_without_field_encryption_keys():
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"FIELD_ENCRYPTION_KEYS", "DJANGO_SETTINGS_MODULE"}
    }
    environment["DJANGO_SECRET_KEY"] = "only-for-this-test"

    result = subprocess.run(
        [sys.executable, "-c", "import shop.settings.production"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS must be set in production" in result.stderr
