"""Accounts: users log in with an e-mail address; a customer is a user who shops."""

from django.contrib.auth.models import (
    AbstractBaseUser,
    BaseUserManager,
    PermissionsMixin,
)
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email, password, **fields):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **fields):
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email, password=None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    # Stored lower-cased (a CHECK below), so plain UNIQUE is case-insensitive.
    email = models.EmailField(max_length=254)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        db_table = "accounts_user"
        constraints = [
            models.UniqueConstraint(fields=["email"], name="accounts_user_email_uniq"),
            # Ann@x.org and ann@x.org are one person: only lower case is stored.
            models.CheckConstraint(
                condition=models.Q(email=Lower("email")),
                name="accounts_user_email_lowercase",
            ),
            models.CheckConstraint(
                condition=models.Q(email__contains="@"),
                name="accounts_user_email_has_at",
            ),
        ]

    def __str__(self):
        return self.email


class Customer(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="customer")
    phone = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    # A VAT or tax number, encrypted at rest with pgcrypto under the key
    # numbered tax_id_key_id (shop/crypto.py). Written and read only through
    # customer_tax_id_set / customer_tax_id_get, never as model fields.
    tax_id_encrypted = models.BinaryField(null=True, editable=False)
    tax_id_key_id = models.SmallIntegerField(null=True, editable=False)

    class Meta:
        db_table = "accounts_customer"
        constraints = [
            # Ciphertext without its key id could never be decrypted again.
            models.CheckConstraint(
                condition=models.Q(
                    tax_id_encrypted__isnull=True, tax_id_key_id__isnull=True
                )
                | models.Q(tax_id_encrypted__isnull=False, tax_id_key_id__isnull=False),
                name="accounts_customer_tax_id_with_key_id",
            ),
        ]

    def __str__(self):
        return str(self.user)


class Address(models.Model):
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="addresses"
    )
    line1 = models.CharField(max_length=200)
    line2 = models.CharField(max_length=200, blank=True, default="")
    city = models.CharField(max_length=100)
    postal_code = models.CharField(max_length=20)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2, upper case")
    is_default = models.BooleanField(default=False)

    class Meta:
        db_table = "accounts_address"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(country__regex=r"^[A-Z]{2}$"),
                name="accounts_address_country_iso2",
            ),
            models.CheckConstraint(
                condition=~models.Q(line1=""), name="accounts_address_line1_not_blank"
            ),
            # At most one default address per customer: a partial unique index.
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(is_default=True),
                name="accounts_address_one_default_per_customer",
            ),
        ]

    def __str__(self):
        return f"{self.line1}, {self.city} {self.country}"
