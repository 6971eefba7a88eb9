from django.contrib import admin

from catalog.models import (
    Category,
    Product,
    ProductVariant,
    Review,
    StockLevel,
    Warehouse,
)


class VariantInline(admin.TabularInline):
    model = ProductVariant
    extra = 0


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "category", "is_active", "min_price", "created_at")
    list_filter = ("is_active",)
    # Kept by the database from the variants; shown, never edited here.
    readonly_fields = ("min_price",)
    search_fields = ("name", "slug")
    list_select_related = ("category",)
    autocomplete_fields = ("category",)
    inlines = [VariantInline]


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "parent")
    search_fields = ("name", "slug")
    list_select_related = ("parent",)


@admin.register(ProductVariant)
class ProductVariantAdmin(admin.ModelAdmin):
    list_display = ("sku", "product", "price", "is_active")
    search_fields = ("sku",)
    list_select_related = ("product",)
    raw_id_fields = ("product",)


@admin.register(StockLevel)
class StockLevelAdmin(admin.ModelAdmin):
    list_display = ("variant", "warehouse", "quantity_on_hand", "reserved")
    raw_id_fields = ("variant",)
    list_select_related = ("variant", "warehouse")


admin.site.register(Warehouse)


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("product", "customer", "rating", "created_at")
    raw_id_fields = ("product", "customer")
