from portal.models import Role
from portal.selectors import user_can_manage, user_is_ministry, user_role


def portal_roles(request) -> dict:
    """Role flags the base layout needs for its navigation."""
    user = getattr(request, "user", None)
    role = user_role(user=user) if user is not None else None
    return {
        "user_role": role,
        "is_ministry": user_is_ministry(user=user) if user is not None else False,
        "can_manage": user_can_manage(user=user) if user is not None else False,
        "is_vendor": role == Role.VENDOR,
    }
