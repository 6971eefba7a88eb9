"""Catalog: a category tree, products with variants (SKUs), stock per warehouse.

Every invariant below is declared in the database with an explicit name, so
it holds for raw SQL, other services and future bugs alike (chapter 02).
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

# What django.utils.text.slugify produces: lower-case ASCII words and dashes.
SLUG_PATTERN = r"^[a-z0-9_]+(-[a-z0-9_]+)*$"
# The products the product list shows: on sale, with an active variant. The
# partial indexes of the list carry exactly this condition, and
# catalog.selectors.product_list filters on it, so the planner can use them.
LISTED = Q(is_active=True, min_price__isnull=False)


class Category(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, db_index=False)
    # PROTECT: deleting a parent must not silently delete a subtree of products.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )

    class Meta:
        db_table = "catalog_category"
        verbose_name_plural = "categories"
        constraints = [
            models.CheckConstraint(
                condition=~Q(parent=F("pk")), name="catalog_category_not_own_parent"
            ),
            models.CheckConstraint(
                condition=~Q(name=""), name="catalog_category_name_not_blank"
            ),
            models.UniqueConstraint(fields=["slug"], name="catalog_category_slug_uniq"),
            models.CheckConstraint(
                condition=Q(slug__regex=SLUG_PATTERN),
                name="catalog_category_slug_format",
            ),
            # Siblings have distinct names; roots (parent IS NULL) as well.
            models.UniqueConstraint(
                "parent",
                "name",
                name="catalog_category_sibling_name_uniq",
                nulls_distinct=False,
            ),
        ]

    def __str__(self):
        return self.name


class Product(models.Model):
    # PROTECT: a category with products cannot disappear under them.
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="products"
    )
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220, db_index=False)
    description = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Kept by PostgreSQL itself (GENERATED ... STORED): never stale, and
    # never written by Python.
    search_document = models.GeneratedField(
        expression=SearchVector("name", weight="A", config="english")
        + SearchVector("description", weight="B", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    # The lowest price among the active variants, NULL when none is active:
    # a denormalization the product list sorts and filters on through an
    # index (chapter 18). Kept by triggers on the variants, in the same
    # transaction as each write, and never by Python: a stale value that a
    # whole-row save() writes back is replaced with the true one
    # (catalog/sql/triggers/product_min_price_v01.sql).
    min_price = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, editable=False
    )
    # Whether any active variant has a unit available (on hand above
    # reserved) in any warehouse: the list's in_stock filter, as a column an
    # index can hold. Kept like min_price, by triggers on the stock and the
    # variants that recompute it only when a row crosses zero
    # (catalog/sql/triggers/product_in_stock_v01.sql). A new product has no
    # variant yet, so none available: False in Python and in SQL.
    in_stock = models.BooleanField(default=False, db_default=False, editable=False)

    class Meta:
        db_table = "catalog_product"
        constraints = [
            models.CheckConstraint(
                condition=~Q(name=""), name="catalog_product_name_not_blank"
            ),
            models.UniqueConstraint(fields=["slug"], name="catalog_product_slug_uniq"),
            models.CheckConstraint(
                condition=Q(slug__regex=SLUG_PATTERN),
                name="catalog_product_slug_format",
            ),
        ]
        indexes = [
            GinIndex(fields=["search_document"], name="catalog_product_search_gin"),
            models.Index(
                fields=["created_at", "id"], name="catalog_product_created_idx"
            ),
            # The product list's orderings, each ending in id as its keyset
            # does, and partial: only the rows the list can show (on sale,
            # with an active variant), which is the list's own WHERE clause.
            # A descending ordering reads the same index backwards.
            models.Index(
                fields=["min_price", "id"],
                name="catalog_product_price_idx",
                condition=LISTED,
            ),
            models.Index(
                fields=["category", "min_price", "id"],
                name="catalog_product_cat_price_idx",
                condition=LISTED,
            ),
            # The column's own collation, which ORDER BY name uses too: an
            # index built with another one could not return rows in order.
            models.Index(
                fields=["name", "id"],
                name="catalog_product_name_idx",
                condition=LISTED,
            ),
            # The sold-out products: a few in a hundred, so a small index
            # that reads them newest first, or hands them all to a sort for
            # the other orderings. in_stock=true needs none: most products
            # are, and each ordering's own index finds them at once.
            models.Index(
                fields=["created_at", "id"],
                name="catalog_product_sold_out_idx",
                condition=LISTED & Q(in_stock=False),
            ),
        ]

    def __str__(self):
        return self.name


class SearchPosting(models.Model):
    """One word of one product's search document, with the rank it earns.

    `rank` is ts_rank_cd(search_document, that word): what a search for the
    word alone ranks the product, computed by PostgreSQL's own function. A
    one-word search then reads its best matches from an index in rank order,
    (lexeme, rank, product), and stops after a page; through the GIN index
    it had to rank every product that holds the word (chapter 06). Kept by
    triggers on the product whenever its search document changes
    (catalog/sql/triggers/search_posting_v01.sql), never by Python.
    """

    pk = models.CompositePrimaryKey("product", "lexeme")
    # CASCADE: a product's words go with it. The primary key leads with
    # product, and serves the key's checks and the triggers' deletes.
    product = models.ForeignKey(
        Product,
        on_delete=models.CASCADE,
        related_name="search_postings",
        db_index=False,
    )
    # Byte order ("C"): a prefix is then one range of the rank index, which
    # the database's default collation does not promise.
    lexeme = models.TextField(db_collation="C")
    rank = models.FloatField()

    class Meta:
        db_table = "catalog_search_posting"
        constraints = [
            models.CheckConstraint(
                condition=~Q(lexeme=""), name="catalog_search_posting_lexeme_not_blank"
            ),
            # A product that holds the word ranks above zero for it.
            models.CheckConstraint(
                condition=Q(rank__gt=0), name="catalog_search_posting_rank_positive"
            ),
        ]
        indexes = [
            # Read backwards: a word's products best first, ties by id
            # descending, which is the relevance ordering and its keyset.
            models.Index(
                fields=["lexeme", "rank", "product"],
                name="catalog_posting_rank_idx",
            ),
        ]

    def __str__(self):
        return f"{self.lexeme} in {self.product_id}"


class ProductVariant(models.Model):
    # CASCADE: variants are parts of their product. Once a variant is sold,
    # the order line's PROTECT blocks the whole delete.
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="variants"
    )
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=120, blank=True, default="")
    price = models.DecimalField(max_digits=12, decimal_places=2)
    is_active = models.BooleanField(default=True)

    class Meta:
        db_table = "catalog_product_variant"
        constraints = [
            models.CheckConstraint(
                condition=Q(price__gte=0), name="catalog_variant_price_non_negative"
            ),
            models.UniqueConstraint(fields=["sku"], name="catalog_variant_sku_uniq"),
            models.CheckConstraint(
                condition=Q(sku__regex=r"^[A-Z0-9][A-Z0-9-]*$"),
                name="catalog_variant_sku_format",
            ),
        ]
        indexes = [models.Index(fields=["price"], name="catalog_variant_price_idx")]

    def __str__(self):
        return self.sku


class Warehouse(models.Model):
    code = models.CharField(max_length=16)
    name = models.CharField(max_length=120)
    is_default = models.BooleanField(default=False)

    class Meta:
        db_table = "catalog_warehouse"
        constraints = [
            models.UniqueConstraint(
                fields=["code"], name="catalog_warehouse_code_uniq"
            ),
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="catalog_warehouse_one_default",
            ),
            models.CheckConstraint(
                condition=Q(code__regex=r"^[A-Z0-9-]+$"),
                name="catalog_warehouse_code_format",
            ),
        ]

    def __str__(self):
        return self.code


class StockLevel(models.Model):
    # CASCADE: stock of a variant that no longer exists means nothing.
    variant = models.ForeignKey(
        ProductVariant, on_delete=models.CASCADE, related_name="stock_levels"
    )
    # PROTECT: a warehouse that still holds stock cannot be deleted.
    warehouse = models.ForeignKey(
        Warehouse, on_delete=models.PROTECT, related_name="stock_levels"
    )
    quantity_on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    # Bumped by writers that use optimistic locking (orders/labs/strategies.py):
    # "update only if nobody changed the row since I read it". A database
    # default, so raw INSERTs and COPY (the seed) need not name it.
    version = models.IntegerField(db_default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "catalog_stock_level"
        constraints = [
            models.UniqueConstraint(
                fields=["variant", "warehouse"],
                name="catalog_stock_variant_warehouse_uniq",
            ),
            models.CheckConstraint(
                condition=Q(quantity_on_hand__gte=0),
                name="catalog_stock_on_hand_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(reserved__gte=0), name="catalog_stock_reserved_non_negative"
            ),
            # The last line of defence against overselling (chapter 12).
            models.CheckConstraint(
                condition=Q(reserved__lte=F("quantity_on_hand")),
                name="catalog_stock_reserved_within_on_hand",
            ),
        ]

    def __str__(self):
        return f"{self.variant_id}@{self.warehouse_id}: {self.quantity_on_hand}"

    @property
    def available(self):
        return self.quantity_on_hand - self.reserved


class Review(models.Model):
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="reviews"
    )
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.CASCADE, related_name="reviews"
    )
    rating = models.SmallIntegerField()
    title = models.CharField(max_length=200, blank=True, default="")
    body = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "catalog_review"
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__gte=1) & Q(rating__lte=5),
                name="catalog_review_rating_1_to_5",
            ),
            models.UniqueConstraint(
                fields=["customer", "product"],
                name="catalog_review_one_per_customer_product",
            ),
        ]

    def __str__(self):
        return f"{self.rating}/5 on {self.product_id}"
