"""OpenAPI (drf-spectacular) description of our API token authentication; loaded by AccountsConfig.ready()."""

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme


class TokenAuthenticationScheme(KnoxTokenScheme):
    """knox's scheme (the same name in the schema), for `accounts.authentication.TokenAuthentication`."""

    target_class = "accounts.authentication.TokenAuthentication"
