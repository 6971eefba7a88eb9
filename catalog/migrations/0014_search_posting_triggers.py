from django.db import migrations

from shop.migration_ops import ForeignKeyOnDelete, NameForeignKey
from shop.sql_files import sql_file


class Migration(migrations.Migration):
    """The postings' key, and the triggers that keep them.

    The triggers' file also writes the postings of the products that exist.
    The seed's COPY of products fires the insert trigger as the loader.
    """

    dependencies = [("catalog", "0013_search_posting")]

    operations = [
        ForeignKeyOnDelete("searchposting", "product", "CASCADE"),
        NameForeignKey("searchposting", "product"),
        sql_file("catalog/sql/triggers/search_posting_v01.sql"),
        sql_file("catalog/sql/functions/search_lexemes_v01.sql"),
        sql_file("catalog/sql/grants/loader_v04.sql"),
    ]
