from accounts.roles import can_operate, can_read


def roles(request) -> dict:
    """`can_read` / `can_operate` for templates, computed lazily."""
    user = getattr(request, "user", None)
    return {"can_read": lambda: can_read(user), "can_operate": lambda: can_operate(user)}
