from django.db import migrations

from shop.sql_files import read_sql


class Migration(migrations.Migration):
    initial = True
    # Runs after the tables of Django's own apps exist; tables created later
    # are covered by the default privileges this migration declares.
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("sessions", "0001_initial"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [
        migrations.RunSQL(
            sql=read_sql("shop/sql/grants_v01.sql"),
            reverse_sql=read_sql("shop/sql/grants_v01_reverse.sql"),
        ),
    ]
