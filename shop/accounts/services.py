"""Account writes: registration, API tokens and a customer's encrypted tax id."""

from django.contrib.auth import authenticate, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token

from shop.accounts.models import Customer, User
from shop.crypto import current_key, execute_with_keys, key_by_id
from shop.db_context import customer_transaction, job_transaction
from shop.errors import InvalidRequest, NotFound
from shop.sql_files import read_sql

TAX_ID_MAX_LENGTH = 32
TAX_ID_SET_SQL = "shop/accounts/sql/queries/customer_tax_id_set_v01.sql"
TAX_ID_REENCRYPT_SQL = "shop/accounts/sql/queries/customer_tax_id_reencrypt_v01.sql"
TAX_ID_KEY_IDS_SQL = "shop/accounts/sql/queries/customer_tax_id_key_ids_v01.sql"


def user_register(*, email: str, password: str) -> User:
    """Create a user and their customer profile in one transaction."""
    email = User.objects.normalize_email(email).lower()
    try:
        password_validation.validate_password(password, User(email=email))
    except DjangoValidationError as exc:
        raise InvalidRequest(" ".join(exc.messages), code="weak_password") from exc
    if User.objects.filter(email=email).exists():
        raise InvalidRequest(
            "An account with this e-mail address already exists.", code="email_taken"
        )
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password)
            Customer.objects.create(user=user)
    except IntegrityError as exc:
        # Two registrations raced past the check above; UNIQUE decided.
        raise InvalidRequest(
            "An account with this e-mail address already exists.", code="email_taken"
        ) from exc
    return user


def token_issue(*, email: str, password: str) -> Token:
    """Return the user's API token, creating it on first login."""
    user = authenticate(email=email.lower(), password=password)
    if user is None or not user.is_active:
        raise InvalidRequest(
            "E-mail address or password is wrong.", code="invalid_credentials"
        )
    token, _ = Token.objects.get_or_create(user=user)
    return token


def customer_tax_id_set(*, customer_id: int, tax_id: str) -> None:
    """Record the customer's tax id, encrypted with the current key."""
    tax_id = tax_id.strip()
    if not tax_id or len(tax_id) > TAX_ID_MAX_LENGTH:
        raise InvalidRequest(
            f"A tax id has 1 to {TAX_ID_MAX_LENGTH} characters.", code="invalid_tax_id"
        )
    key_id, key = current_key()
    params = {"customer_id": customer_id, "tax_id": tax_id}
    params |= {"key_id": key_id, "key": key}
    with customer_transaction(customer_id):
        updated, _ = execute_with_keys(read_sql(TAX_ID_SET_SQL), params)
    if updated != 1:
        raise NotFound(f"No customer with id {customer_id}.")


def customer_tax_ids_on_old_keys() -> list[int]:
    """Return the ids of the keys, other than the current one, still in use."""
    key_id, _ = current_key()
    _, rows = execute_with_keys(
        read_sql(TAX_ID_KEY_IDS_SQL), {"current_key_id": key_id}
    )
    return [old_key_id for (old_key_id,) in rows]


def customer_tax_ids_reencrypt_batch(*, old_key_id: int, batch_size: int) -> int:
    """Move up to batch_size tax ids from key old_key_id to the current key.

    One short transaction per batch: its row locks are held for one
    statement's time, so customers changing their tax id wait at most that
    long. Return how many rows moved; 0 means none is left that is not locked.
    """
    new_key_id, new_key = current_key()
    params = {"old_key_id": old_key_id, "old_key": key_by_id(old_key_id)}
    params |= {"new_key_id": new_key_id, "new_key": new_key}
    params["batch_size"] = batch_size
    # A background job: the batch spans many customers' rows.
    with job_transaction("rotate_field_keys", statement_timeout="60s"):
        moved, _ = execute_with_keys(read_sql(TAX_ID_REENCRYPT_SQL), params)
    return moved
