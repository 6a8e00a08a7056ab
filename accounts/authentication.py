"""DRF authentication of API tokens: knox's, with the one rule of who may authenticate
(`accounts.selectors.user_can_authenticate`) instead of knox's `is_active` alone. The REST API and the WebSocket
middleware (`accounts.websocket`) both use it, so a token works in both or in neither."""

from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions

from accounts.selectors import user_can_authenticate


class TokenAuthentication(KnoxTokenAuthentication):
    """`Authorization: Token <token>`; refused when its account is inactive, awaits staff approval or has not
    confirmed its email address."""

    def validate_user(self, auth_token):
        if not user_can_authenticate(auth_token.user):
            raise exceptions.AuthenticationFailed("This account may not log in (inactive or not confirmed).")
        return (auth_token.user, auth_token)
