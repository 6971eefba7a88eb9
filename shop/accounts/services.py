"""Account writes: registration and API tokens."""

from django.contrib.auth import authenticate, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token

from shop.accounts.models import Customer, User
from shop.errors import ShopError


def user_register(*, email: str, password: str) -> User:
    """Create a user and their customer profile in one transaction."""
    email = User.objects.normalize_email(email).lower()
    try:
        password_validation.validate_password(password, User(email=email))
    except DjangoValidationError as exc:
        raise ShopError(" ".join(exc.messages), code="weak_password") from exc
    if User.objects.filter(email=email).exists():
        raise ShopError(
            "An account with this e-mail address already exists.", code="email_taken"
        )
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password)
            Customer.objects.create(user=user)
    except IntegrityError as exc:
        # Two registrations raced past the check above; UNIQUE decided.
        raise ShopError(
            "An account with this e-mail address already exists.", code="email_taken"
        ) from exc
    return user


def token_issue(*, email: str, password: str) -> Token:
    """Return the user's API token, creating it on first login."""
    user = authenticate(email=email.lower(), password=password)
    if user is None or not user.is_active:
        raise ShopError(
            "E-mail address or password is wrong.", code="invalid_credentials"
        )
    token, _ = Token.objects.get_or_create(user=user)
    return token
