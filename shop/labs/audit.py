"""Lab `audit` (23): a change to a sensitive table writes an audit entry with
who made it; the app cannot read or touch the log, and the owner cannot
rewrite it; pgaudit, where it is loaded, logs the statements that read the
encrypted tax id, and not the ones that do not.

Everything runs in transactions that are rolled back, so the lab leaves no
audit entries. The app's role cannot read the log, and another connection
cannot see uncommitted rows, so the change is made on the owner's connection
with the same transaction-local context the app sets
(shop/db_context.py:customer_transaction). tests/shop/test_audit.py shows the
same entry written by shop_app itself, committed.
"""

import uuid

from shop import pgaudit
from shop.accounts.labs import lab_customers
from shop.db_context import customer_transaction
from shop.lab import Narrator, lab, rolled_back

ADDRESS_SQL = """
INSERT INTO accounts_address
    (customer_id, line1, line2, city, postal_code, country, is_default)
VALUES (%s, '1 Lab Street', '', 'Oldtown', '1000', 'US', true)
RETURNING id
"""

THIS_TRANSACTION_SQL = """
SELECT table_name, row_pk, action, old_row ->> 'city' AS old_city,
       new_row ->> 'city' AS new_city, db_role, app_user_id, app_customer_id
FROM shop_audit_log
WHERE txid = pg_current_xact_id()
ORDER BY id
"""


@lab(
    "audit",
    chapter="23",
    summary="triggers log every change with who made it; the log is append-only",
)
def audit(n: Narrator) -> None:
    n.step("Who may do what with shop_audit_log")
    rows = n.sql(
        "SELECT r AS role, has_table_privilege(r, 'shop_audit_log', 'SELECT') AS "
        "may_select, has_table_privilege(r, 'shop_audit_log', 'INSERT') AS "
        "may_insert, pg_has_role('shop_owner', r, 'MEMBER') AS owner_is_member "
        "FROM unnest(ARRAY['shop_owner', 'shop_app', 'shop_readonly']) AS r",
        using="owner",
    )
    n.expect(
        [row[1:] for row in rows[1:]] == [(False, False, False)] * 2,
        "neither shop_app nor shop_readonly may read or write the log, and "
        "shop_owner is a member of neither",
    )
    n.say(
        "shop_owner is not a member of shop_app, so it cannot SET ROLE shop_app:\n"
        "the change below runs as shop_owner, with the app's customer context."
    )

    with rolled_back("owner"):
        n.step("As shop_owner, in a transaction that is rolled back")
        tag = f"audit-{uuid.uuid4().hex[:12]}"
        # A new customer has no id yet to act for: staff create it.
        n.act_as_staff(using="owner")
        ((customer_id, user_id, _),) = lab_customers(
            n, tag, using="owner", label="a customer"
        )
        ((address_id,),) = n.sql(
            ADDRESS_SQL, [customer_id], using="owner", label="and an address"
        )
        with customer_transaction(customer_id, user_id=user_id, using="owner"):
            n.say(
                "    -- customer_transaction(): set_config('app.customer_id', ..., "
                "true) and app.user_id"
            )
            n.sql(
                "UPDATE accounts_address SET city = %s WHERE id = %s",
                ["Newtown", address_id],
                using="owner",
            )
        rows = n.sql(THIS_TRANSACTION_SQL, using="owner", label="this transaction's")
        inserts = {row[0] for row in rows if row[2] == "INSERT"}
        n.expect(
            inserts == {"accounts_user", "accounts_customer", "accounts_address"},
            "each INSERT was logged by the statement-level triggers",
        )
        updates = [row for row in rows if row[2] == "UPDATE"]
        n.expect(
            len(updates) == 1
            and updates[0][1:6]
            == (str(address_id), "UPDATE", "Oldtown", "Newtown", "shop_owner"),
            "the UPDATE logged the changed column, before and after, and the role",
        )
        n.expect(
            updates[0][6:] == (user_id, customer_id),
            "the entry names the user and customer the transaction acted for",
        )
        n.expect(
            all(row[7] is None for row in rows if row[2] == "INSERT"),
            "the INSERTs, made as staff before the customer context, name nobody",
        )

        n.step("Even the owner cannot rewrite the log")
        n.expect_sql_error(
            "UPDATE shop_audit_log SET new_row = '{}' "
            "WHERE txid = pg_current_xact_id()",
            using="owner",
            sqlstate="42501",
            contains="append-only: UPDATE refused",
            claim="the guard trigger refuses the owner's UPDATE",
        )
        n.expect_sql_error(
            "DELETE FROM shop_audit_log WHERE txid = pg_current_xact_id()",
            using="owner",
            sqlstate="42501",
            contains="append-only: DELETE refused",
            claim="and its DELETE of recent entries",
        )
        n.say("    ROLLBACK: the customer, the change and its entries all vanish")

    n.step("As shop_app: no privilege on the log at all")
    n.sql("SELECT current_user")
    for statement, verb in (
        ("SELECT count(*) FROM shop_audit_log", "read"),
        ("UPDATE shop_audit_log SET new_row = NULL WHERE id = 0", "change"),
        (
            "INSERT INTO shop_audit_log (table_name, action, new_row) "
            "VALUES ('orders_order', 'INSERT', '{}')",
            "forge an entry in",
        ),
    ):
        n.expect_sql_error(
            statement,
            sqlstate="42501",
            contains="permission denied for table shop_audit_log",
            claim=f"shop_app cannot {verb} the log (42501)",
        )
    n.say(
        "The app's own changes are still logged: the trigger function is\n"
        "SECURITY DEFINER, so it appends with its owner's rights."
    )
    _pgaudit(n)


def _pgaudit(n: Narrator) -> None:
    n.step("pgaudit: the statements themselves, in the server's log")
    path = pgaudit.server_log()
    if not pgaudit.loaded() or path is None:
        n.say(
            "    pgaudit is not loaded here (or the log is not var/log/primary.log):\n"
            "    install postgresql-15-pgaudit and run scripts/services.sh up."
        )
        return
    marker = f"lab-audit-{uuid.uuid4().hex[:12]}"
    since = pgaudit.log_end(path)
    n.sql(
        "SELECT count(tax_id_encrypted) FROM accounts_customer WHERE %s <> ''",
        [marker],
        label="as shop_app: the encrypted tax id, which shop_auditor may read",
    )
    n.sql(
        "SELECT count(phone) FROM accounts_customer WHERE %s <> ''",
        [f"{marker}-phone"],
        label="the phone number, which it may not",
    )
    entries = pgaudit.audit_entries(path, since, marker)
    n.say("    -- var/log/primary.log, the new AUDIT entries naming the marker:")
    for entry in entries:
        n.say("    " + entry.strip().split("LOG:  ", 1)[-1])
    n.expect(
        len(entries) == 1
        and ",READ,SELECT,TABLE,public.accounts_customer," in entries[0]
        and f"{marker}-phone" not in entries[0],
        "one OBJECT entry, for the tax id read: the column grant chose it",
    )
