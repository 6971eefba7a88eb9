"""The accounts phase: demo logins, customers and their addresses."""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.hashers import make_password

from shop.accounts.models import Address, Customer, User
from shop.seeding.copy import CopyWriter
from shop.seeding.determinism import BASE_TIME, moment_between
from shop.seeding.plan import Plan

from .vocabulary import CITIES, FIRST_NAMES, LAST_NAMES, STREET_KINDS, STREETS

SECOND_ADDRESS_SHARE = 0.4
USER_FIELDS = ("id", "password", "last_login", "is_superuser", "email")
USER_FIELDS += ("is_active", "is_staff", "date_joined")
ADDRESS_FIELDS = ("customer", "line1", "line2", "city", "postal_code")
ADDRESS_FIELDS += ("country", "is_default")


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str


# Published demo credentials for a local shop, never for a real deployment.
DEMO_STAFF = DemoLogin("staff", "staff@shop.test", "staff-pass-123")
DEMO_CUSTOMER = DemoLogin("customer", "customer@shop.test", "customer-pass-123")
DEMO_LOGINS = (DEMO_STAFF, DEMO_CUSTOMER)


def accounts_row_count(plan: Plan) -> int:
    users = 2 + plan.customers
    customers = 1 + plan.customers
    return users + customers + customers + _second_address_count(plan)


def seed_accounts(writer: CopyWriter, *, plan: Plan, rng: random.Random) -> list[int]:
    """Write the demo logins and plan.customers customers; return the latter's ids.

    The demo customer is left out of the returned ids, so it starts with a
    clean slate: no reviews a reader did not write.
    """
    user_ids = writer.reserve_ids(User, 2 + plan.customers)
    customer_ids = writer.reserve_ids(Customer, 1 + plan.customers)
    joined = [BASE_TIME - timedelta(days=400)] + [
        moment_between(rng, 1095, 200) for _ in range(plan.customers)
    ]
    writer.copy(User, USER_FIELDS, _user_rows(rng, user_ids, joined))
    writer.copy(
        Customer,
        ("id", "user", "phone", "created_at"),
        (
            (customer_id, user_id, f"+1-555-{rng.randint(0, 9999):04d}", moment)
            for customer_id, user_id, moment in zip(
                customer_ids, user_ids[1:], joined, strict=True
            )
        ),
    )
    writer.copy(Address, ADDRESS_FIELDS, _address_rows(rng, plan, customer_ids))
    return customer_ids[1:]


def _user_rows(rng, user_ids, joined) -> Iterator[tuple]:
    staff_id, *customer_user_ids = user_ids
    # Hashing is slow on purpose (PBKDF2, many iterations): 50,000 hashes
    # would take hours. Seeded customers are demo data that share the demo
    # customer's password, so one hash serves them all.
    customer_hash = make_password(DEMO_CUSTOMER.password)
    staff_hash = make_password(DEMO_STAFF.password)
    staff_joined = BASE_TIME - timedelta(days=500)
    yield (staff_id, staff_hash, None, True, DEMO_STAFF.email, True, True, staff_joined)
    emails = [DEMO_CUSTOMER.email] + [
        _email(rng, number) for number in range(1, len(customer_user_ids))
    ]
    for user_id, email, moment in zip(customer_user_ids, emails, joined, strict=True):
        yield (user_id, customer_hash, None, False, email, True, False, moment)


def _email(rng: random.Random, number: int) -> str:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    # The number keeps addresses unique; lower case is what the CHECK allows.
    return f"{first}.{last}.{number}@example.com".lower()


def _second_address_count(plan: Plan) -> int:
    return round(plan.customers * SECOND_ADDRESS_SHARE)


def _address_rows(rng, plan, customer_ids) -> Iterator[tuple]:
    demo_id, *seeded_ids = customer_ids
    yield (demo_id, "1 Demo Street", "", "Portland", "97201", "US", True)
    second = set(rng.sample(range(plan.customers), _second_address_count(plan)))
    for index, customer_id in enumerate(seeded_ids):
        yield (customer_id, *random_address(rng), True)
        if index in second:
            yield (customer_id, *random_address(rng), False)


def random_address(rng: random.Random) -> tuple[str, str, str, str, str]:
    city, country = rng.choice(CITIES)
    line1 = f"{rng.randint(1, 250)} {rng.choice(STREETS)} {rng.choice(STREET_KINDS)}"
    line2 = f"Apartment {rng.randint(1, 40)}" if rng.random() < 0.25 else ""
    return line1, line2, city, f"{rng.randint(10000, 99999)}", country
