from django.db import migrations

from shop.sql_files import sql_file


class Migration(migrations.Migration):
    # What every app's migrations build on: the readers of the acting context
    # that row-level security policies call, and the updated_at trigger
    # function. The policies and triggers themselves belong to the apps.
    dependencies = [("shop", "0002_audit_log")]

    operations = [
        sql_file("shop/sql/rls/context_functions_v01.sql"),
        sql_file("shop/sql/functions/touch_updated_at_v01.sql"),
    ]
