from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    # The log and the trigger function only: each app attaches the function
    # to its own tables in its own migrations (accounts 0005, orders 0006).
    dependencies = [("shop", "0001_role_grants")]

    operations = [
        # After the default privileges of 0001, which this revokes for the log.
        sql_file("shop/sql/tables/audit_log_v01.sql"),
        sql_file("shop/sql/functions/audit_changes_v01.sql"),
    ]
