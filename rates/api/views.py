from django.conf import settings
from django.db.models import Max
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import CanOperate, CanRead
from common.jobs import JobProgressSerializer, job_progress
from common.pagination import PageNumberPagination, page_size_schema
from rates.api.serializers import (
    LegacyRateListInputSerializer,
    LegacyRateListOutputSerializer,
    RateConvertInputSerializer,
    RateConvertOutputSerializer,
    RateListInputSerializer,
    RateListOutputSerializer,
    RatesUpdateInputSerializer,
    RatesUpdateOutputSerializer,
)
from rates.selectors import amount_convert, currency_get_many, is_stale, rate_list, rates_are_demo, rates_from_base
from rates.services import rates_update_enqueue
from rates.tasks import update_rates


class RateListApi(APIView):
    """Latest rates, or the last published on or before `date`, per provider; `stale` past the configured age."""

    permission_classes = [CanRead]

    @extend_schema(
        parameters=[
            RateListInputSerializer,
            OpenApiParameter("page", {"type": "integer", "minimum": 1}, description="A page number (from 1)."),
            OpenApiParameter(
                "page_size",
                page_size_schema(PageNumberPagination.max_page_size),
                description=PageNumberPagination.page_size_query_description,
            ),
        ],
        responses=RateListOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        params = RateListInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        filters = params.validated_data
        currency_get_many(**{key: filters[key] for key in ("base", "quote") if key in filters})
        rows = rate_list(
            base=filters.get("base"),
            quote=filters.get("quote"),
            provider=filters.get("provider"),
            on=filters.get("date"),
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        newest = rows.aggregate(newest=Max("fetched_at"))["newest"]
        out = RateListOutputSerializer(
            {
                "count": paginator.page.paginator.count if paginator.page is not None else 0,
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
                "results": page,
                "date": filters.get("date"),
                "stale": is_stale(newest, on=filters.get("date")),
                # Demo rates exist only while no real rate does: the page's rows tell for the whole answer.
                "demo": rates_are_demo([row.provider for row in page or []]),
            }
        )
        return Response(out.data)


class RateConvertApi(APIView):
    """Convert an amount between any two currencies (cross rates through a common currency when needed)."""

    permission_classes = [CanRead]

    @extend_schema(
        parameters=[RateConvertInputSerializer],
        responses={
            200: RateConvertOutputSerializer,
            404: OpenApiResponse(description="No rate between the two currencies (on or before `date`): `no_rate`."),
        },
    )
    def get(self, request: Request) -> Response:
        params = RateConvertInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        conversion = amount_convert(amount=data["amount"], base=data["from"], quote=data["to"], on=data.get("date"))
        resolved = conversion.rate
        stale = is_stale(resolved.fetched_at, on=data.get("date")) if resolved.provider else False
        demo = rates_are_demo([resolved.provider])
        return Response(RateConvertOutputSerializer({"conversion": conversion, "stale": stale, "demo": demo}).data)


class RatesUpdateApi(APIView):
    """Operators: fetch rates now, in the background. 202 with the job id and a URL to poll its progress."""

    permission_classes = [CanOperate]

    @extend_schema(request=RatesUpdateInputSerializer, responses={202: RatesUpdateOutputSerializer})
    def post(self, request: Request) -> Response:
        params = RatesUpdateInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        job_id = rates_update_enqueue(
            provider=params.validated_data.get("provider"), on=params.validated_data.get("date"), user=request.user
        )
        progress_url = request.build_absolute_uri(reverse("rates-api:job-progress", args=[job_id]))
        out = RatesUpdateOutputSerializer({"job_id": job_id, "progress_url": progress_url})
        return Response(out.data, status=status.HTTP_202_ACCEPTED)


class RatesJobApi(APIView):
    """The state and progress of a rates update job (viewer role). Ids of other kinds of jobs answer 404."""

    permission_classes = [CanRead]

    @extend_schema(responses=JobProgressSerializer)
    def get(self, request: Request, job_id: str) -> Response:
        info = job_progress(job_id=job_id, kinds=[update_rates.name])
        if info is None:
            raise NotFound("No rates update job with this id.")
        return Response(JobProgressSerializer(info).data)


class LegacyRateListApi(APIView):
    """The old service's `GET /v1/rates[?currency=KES]`: rates from RATES_BASE to each of RATES_QUOTES."""

    permission_classes = [CanRead]

    @extend_schema(
        parameters=[LegacyRateListInputSerializer],
        responses={
            200: LegacyRateListOutputSerializer,
            404: OpenApiResponse(description="No rate to the one `currency` asked for: `no_rate`."),
        },
    )
    def get(self, request: Request) -> Response:
        params = LegacyRateListInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        resolved, newest = rates_from_base(quote=params.validated_data.get("currency"))
        out = LegacyRateListOutputSerializer(
            {
                "base": settings.RATES_BASE,
                "stale": is_stale(newest),
                "demo": rates_are_demo([rate.provider for rate in resolved]),
                "rates": resolved,
            }
        )
        return Response(out.data)


class LegacyRatesUpdateApi(RatesUpdateApi):
    """The old service's `POST /v1/rates/update`, now for operators only (it used to let anyone trigger)."""
