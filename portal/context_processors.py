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


def notification_badge(request) -> dict:
    """The header's unread count: one indexed COUNT per rendered page (none for anonymous visitors)."""
    from portal.selectors import notification_unread_count

    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return {"notification_unread": 0}
    return {"notification_unread": notification_unread_count(user=user)}
