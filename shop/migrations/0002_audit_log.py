from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    # The audited tables must exist; their columns do not matter, since the
    # trigger copies whole rows as jsonb, whatever their shape.
    dependencies = [
        ("shop", "0001_role_grants"),
        ("accounts", "0001_users_customers_addresses"),
        ("orders", "0001_orders_schema"),
    ]

    operations = [
        # After the default privileges of 0001, which this revokes for the log.
        sql_file("shop/sql/tables/audit_log_v01.sql"),
        sql_file("shop/sql/triggers/audit_v01.sql"),
    ]
