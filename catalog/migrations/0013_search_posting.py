import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """catalog_search_posting: each product's words with their rank.

    Django creates the foreign key at the end of the migration, so its ON
    DELETE, its name and the triggers come in the next one.
    """

    dependencies = [
        ("catalog", "0012_product_sold_out_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchPosting",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "product",
                        "lexeme",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("lexeme", models.TextField(db_collation="C")),
                ("rank", models.FloatField()),
                (
                    "product",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="search_postings",
                        to="catalog.product",
                    ),
                ),
            ],
            options={
                "db_table": "catalog_search_posting",
                "indexes": [
                    models.Index(
                        fields=["lexeme", "rank", "product"],
                        name="catalog_posting_rank_idx",
                    )
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("lexeme", ""), _negated=True),
                        name="catalog_search_posting_lexeme_not_blank",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("rank__gt", 0)),
                        name="catalog_search_posting_rank_positive",
                    ),
                ],
            },
        ),
    ]
