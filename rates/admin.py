from django.contrib import admin, messages

from common.admin import DropdownFilter
from rates.models import Currency, ExchangeRate, RateFetch
from rates.services import rates_update_enqueue


@admin.register(Currency)
class CurrencyAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "minor_units")
    search_fields = ("code", "name")


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    list_display = ("as_of", "provider", "base", "quote", "rate_text", "is_inverse", "fetched_at")
    # Currencies as drop-down lists: a link per currency made the filter column about 5,000 px tall.
    list_filter = ("provider", "is_inverse", ("base", DropdownFilter), ("quote", DropdownFilter), "as_of")
    search_fields = ("base__code", "quote__code")
    date_hierarchy = "as_of"
    list_select_related = ("base", "quote")
    readonly_fields = ("fetched_at",)
    raw_id_fields = ("base", "quote")

    @admin.display(description="rate", ordering="rate")
    def rate_text(self, row: ExchangeRate) -> str:
        return row.rate_text


@admin.register(RateFetch)
class RateFetchAdmin(admin.ModelAdmin):
    """The fetch log: written by the services only, read here."""

    list_display = ("started_at", "provider", "status", "rows", "as_of", "requested_date", "finished_at", "error")
    list_filter = ("status", "provider")
    date_hierarchy = "started_at"
    actions = ("update_now",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Fetch the latest rates now (background job)")
    def update_now(self, request, queryset):
        job_id = rates_update_enqueue(user=request.user)
        self.message_user(request, f"Rates update queued (job {job_id}).", messages.SUCCESS)
