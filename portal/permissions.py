"""Permission codenames, in one place (never inline strings).

Object permissions are held through django-guardian. Vendors hold them on their
own organisation's projects only (through the organisation's group) and never a
model-level permission: guardian's ``accept_global_perms`` would otherwise
widen a vendor's view to every project.
"""

PROJECT_VIEW = "projects.view_project"
PROJECT_SUBMIT = "projects.submit_project"
PROJECT_REVIEW = "projects.review_project"

PROJECT_VIEW_CODENAME = "view_project"
PROJECT_SUBMIT_CODENAME = "submit_project"
PROJECT_REVIEW_CODENAME = "review_project"
