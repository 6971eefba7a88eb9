"""Lab `update-anomaly` (03): copied names drift apart after one rename, the
normalized join cannot; the order's address snapshot is the deliberate exception.
"""

from catalog.labs.rows import catalog_rows
from shop.accounts.labs import lab_customers
from shop.lab import Narrator, lab, rolled_back


@lab(
    "update-anomaly",
    chapter="03",
    summary="Copied names drift apart after one rename; the normalized join cannot",
)
def update_anomaly(n: Narrator) -> None:
    with rolled_back("default"):
        n.say("    BEGIN")
        n.act_as_staff()  # it writes a customer's address and order
        (ids,) = catalog_rows(
            n, "03", on_hand=None, label="setup, inside the transaction"
        )
        product, category = ids.product_id, ids.category_id

        n.step(
            "A denormalized table: each order line copies product and category names"
        )
        n.sql(
            """
            CREATE TEMP TABLE lab_order_line_flat (
                order_no integer PRIMARY KEY,
                product_id bigint NOT NULL,
                product_name text NOT NULL,
                category_name text NOT NULL,
                quantity integer NOT NULL
            )
            """,
            label="a TEMP table, private to this session, gone at ROLLBACK",
        )
        n.sql(
            """
            INSERT INTO lab_order_line_flat
                (order_no, product_id, product_name, category_name, quantity)
            SELECT g, p.id, p.name, c.name, 1
            FROM catalog_product AS p
            JOIN catalog_category AS c ON c.id = p.category_id
            CROSS JOIN generate_series(1, %s) AS g
            WHERE p.id = %s
            """,
            [3, product],
        )

        n.step("Rename the category, in its one place")
        n.sql(
            "UPDATE catalog_category SET name = %s WHERE id = %s",
            ["Lab 03 running shoes", category],
        )
        joined = n.sql(
            """
            SELECT p.name AS product, c.name AS category
            FROM catalog_product AS p
            JOIN catalog_category AS c ON c.id = p.category_id
            WHERE p.id = %s
            """,
            [product],
            label="normalized: the join reads the one source of truth",
        )
        n.expect(
            joined[0][1] == "Lab 03 running shoes",
            "the normalized read shows the new name at once",
        )
        stale = n.sql(
            """
            SELECT f.order_no, f.category_name AS copied, c.name AS current
            FROM lab_order_line_flat AS f
            JOIN catalog_product AS p ON p.id = f.product_id
            JOIN catalog_category AS c ON c.id = p.category_id
            WHERE f.category_name <> c.name
            ORDER BY f.order_no
            """,
            label="denormalized: the copies that now disagree",
        )
        n.expect(
            len(stale) == 3,
            "all 3 copies still carry the old name: an update anomaly",
        )

        n.step("Fix the copies by hand, and miss some (as a hurried script would)")
        n.sql(
            "UPDATE lab_order_line_flat SET category_name = %s WHERE order_no = %s",
            ["Lab 03 running shoes", 1],
        )
        names = n.sql(
            """
            SELECT product_id, count(DISTINCT category_name) AS category_names,
                   string_agg(DISTINCT category_name, ' | ') AS which
            FROM lab_order_line_flat
            GROUP BY product_id
            """
        )
        n.expect(
            names[0][1] == 2,
            "one product now sits in two categories at once: the flat table "
            "contradicts itself",
        )
        n.say(
            "Normalization stores each fact once (the category's name in\n"
            "catalog_category), so a change is one UPDATE and there is nothing to\n"
            "forget."
        )

        n.step("The deliberate exception: an order's shipping-address snapshot")
        customer = lab_customers(n, "03")[0].customer_id
        address = n.sql(
            """
            INSERT INTO accounts_address
                (customer_id, line1, line2, city, postal_code, country, is_default)
            VALUES (%s, %s, '', %s, %s, %s, true)
            RETURNING id
            """,
            [customer, "1 Old Street", "Leeds", "LS1 1AA", "GB"],
        )[0][0]
        n.sql(
            """
            CREATE TEMP TABLE lab_order (
                order_no integer PRIMARY KEY,
                customer_id bigint NOT NULL,
                ship_line1 text NOT NULL,
                ship_city text NOT NULL,
                ship_postal_code text NOT NULL,
                ship_country char(2) NOT NULL
            )
            """,
            label="orders copy the address at checkout (a TEMP stand-in here)",
        )
        n.sql(
            """
            INSERT INTO lab_order
            SELECT 1, customer_id, line1, city, postal_code, country
            FROM accounts_address WHERE id = %s
            """,
            [address],
        )
        n.sql(
            "UPDATE accounts_address SET line1 = %s, city = %s, postal_code = %s "
            "WHERE id = %s",
            ["9 New Road", "York", "YO1 7HH", address],
            label="later, the customer moves",
        )
        moved = n.sql(
            """
            SELECT o.order_no, o.ship_city AS shipped_to, a.city AS lives_now
            FROM lab_order AS o
            JOIN accounts_address AS a ON a.customer_id = o.customer_id
            """
        )
        n.expect(
            moved == [(1, "Leeds", "York")],
            "the order still says where the parcel went; only the address book changed",
        )
        n.say(
            "The snapshot is not a copy that must follow changes: it records a fact\n"
            "about the moment of checkout, as the order line's unit price does. An\n"
            "address_id join would rewrite history (the order would claim it went to\n"
            "York) and would break when the customer deletes the address. Nothing\n"
            "ever updates a snapshot, so there is no anomaly to fear."
        )
        n.say("\n    ROLLBACK")
