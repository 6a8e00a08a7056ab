from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import Throttled
from rest_framework.generics import get_object_or_404
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework.viewsets import ReadOnlyModelViewSet

from accounts.api.serializers import (
    TokenObtainInputSerializer,
    TokenOutputSerializer,
    UserRoleInputSerializer,
    UserSerializer,
)
from accounts.authentication import TokenAuthentication
from accounts.filters import UserFilter
from accounts.selectors import user_list
from accounts.services import AccountLocked, api_token_obtain, api_token_revoke, user_set_role


class UserMeApi(APIView):
    """The authenticated user, whatever their role."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=UserSerializer)
    def get(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)


class UserViewSet(ReadOnlyModelViewSet):
    """Staff only: list and read users."""

    permission_classes = [IsAdminUser]
    serializer_class = UserSerializer
    filterset_class = UserFilter
    search_fields = ["email", "first_name", "last_name"]
    ordering_fields = ["email", "date_joined"]

    def get_queryset(self):
        return user_list()


class UserRoleApi(APIView):
    """Staff only: set a user's role (`viewer`, `operator` or `none`)."""

    permission_classes = [IsAdminUser]

    @extend_schema(request=UserRoleInputSerializer, responses=UserSerializer)
    def post(self, request: Request, pk: int) -> Response:
        serializer = UserRoleInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = get_object_or_404(user_list(), pk=pk)
        user = user_set_role(user=user, role=serializer.validated_data["role"])
        return Response(UserSerializer(user_list().get(pk=user.pk)).data)


@extend_schema(tags=["auth"])
class TokenObtainApi(APIView):
    """Exchange email and password for an API token. Throttled per client address (scope `login`), and refused
    while the account is locked (too many wrong passwords on any log-in path)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(
        request=TokenObtainInputSerializer,
        responses={
            201: TokenOutputSerializer,
            401: OpenApiResponse(description="Wrong email or password: `invalid_credentials`."),
            403: OpenApiResponse(
                description="The right password of an account that may not log in (inactive, awaiting approval or "
                "email confirmation): `account_unusable`."
            ),
            429: OpenApiResponse(
                description="Too many attempts from this address (`throttled`) or too many wrong passwords for this "
                "account (`account_locked`); `Retry-After` says when to try again."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = TokenObtainInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            token, raw = api_token_obtain(request=request, **serializer.validated_data)
        except AccountLocked as exc:
            # DRF's throttle answer carries the Retry-After header; the body keeps the one error shape.
            raise Throttled(wait=exc.retry_after, detail=exc.detail, code=exc.code) from exc
        data = TokenOutputSerializer({"token": raw, "expiry": token.expiry, "user": token.user}).data
        return Response(data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["auth"])
class TokenRevokeApi(APIView):
    """Revoke the token this request is authenticated with."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        api_token_revoke(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)
