from django.contrib import admin

from catalog.cache import Change, catalog_changed
from catalog.models import (
    Category,
    Product,
    ProductVariant,
    Review,
    StockLevel,
    Warehouse,
)


class CatalogCacheAdmin(admin.ModelAdmin):
    """Retire the catalog cache's entries that a save or delete here changes.

    The database's triggers report the same writes to the cache's listener;
    this makes the change show at once, whether or not a listener runs.
    Each model says what a change of its rows retires (`cache_change`), read
    before a delete, while the rows still say which products they belong to.
    """

    def cache_change(self, objs) -> Change:
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        catalog_changed(self.cache_change([obj]))

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        catalog_changed(self.cache_change([form.instance]))

    def delete_model(self, request, obj):
        retired = self.cache_change([obj])
        super().delete_model(request, obj)
        catalog_changed(retired)

    def delete_queryset(self, request, queryset):
        retired = self.cache_change(list(queryset))
        super().delete_queryset(request, queryset)
        catalog_changed(retired)


class VariantInline(admin.TabularInline):
    model = ProductVariant
    extra = 0


@admin.register(Product)
class ProductAdmin(CatalogCacheAdmin):
    list_display = ("name", "slug", "category", "is_active", "min_price", "created_at")
    list_filter = ("is_active",)
    # Kept by the database from the variants; shown, never edited here.
    readonly_fields = ("min_price",)
    search_fields = ("name", "slug")
    list_select_related = ("category",)
    autocomplete_fields = ("category",)
    inlines = [VariantInline]

    def cache_change(self, objs):
        return Change.of([p.pk for p in objs], lists=True)


@admin.register(Category)
class CategoryAdmin(CatalogCacheAdmin):
    list_display = ("name", "slug", "parent")
    search_fields = ("name", "slug")
    list_select_related = ("parent",)

    def cache_change(self, objs):
        # The tree, the category filter's subtrees, and the pages of the
        # products that show the category's name and slug.
        products = Product.objects.filter(category__in=[c.pk for c in objs])
        return Change.of(
            products.values_list("pk", flat=True), lists=True, categories=True
        )


@admin.register(ProductVariant)
class ProductVariantAdmin(CatalogCacheAdmin):
    list_display = ("sku", "product", "price", "is_active")
    search_fields = ("sku",)
    list_select_related = ("product",)
    raw_id_fields = ("product",)

    def cache_change(self, objs):
        return Change.of([v.product_id for v in objs], lists=True)

    def save_model(self, request, obj, form, change):
        # A variant moved to another product leaves the one it came from.
        moved_from = form.initial.get("product") if change else None
        super().save_model(request, obj, form, change)
        if moved_from is not None:
            catalog_changed(Change.of([moved_from], lists=True))


@admin.register(StockLevel)
class StockLevelAdmin(CatalogCacheAdmin):
    list_display = ("variant", "warehouse", "quantity_on_hand", "reserved")
    raw_id_fields = ("variant",)
    list_select_related = ("variant", "warehouse")

    def cache_change(self, objs):
        variant_ids = {level.variant_id for level in objs}
        products = ProductVariant.objects.filter(pk__in=variant_ids)
        return Change.of(products.values_list("product_id", flat=True), lists=True)

    def save_model(self, request, obj, form, change):
        moved_from = form.initial.get("variant") if change else None
        super().save_model(request, obj, form, change)
        if moved_from is not None:
            catalog_changed(self.cache_change([StockLevel(variant_id=moved_from)]))


admin.site.register(Warehouse)


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("product", "customer", "rating", "created_at")
    raw_id_fields = ("product", "customer")
