"""Staff's view of payments: where a refund the gateway refused is settled.

Read-only: every payment row is written by checkout, cancel or recovery,
which keep it in step with the gateway; staff look, filter by status
(refund_failed first of all) and settle a refused refund with the gateway
by hand. The admin's staff context (shop/middleware.py) lets them see
every customer's payments.
"""

from django.contrib import admin

from orders.models import Payment


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ("order", "status", "amount", "gateway_reference", "created_at")
    list_filter = ("status",)
    search_fields = ("gateway_reference", "order__payment_reference")
    list_select_related = ("order",)
    ordering = ("-created_at",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
