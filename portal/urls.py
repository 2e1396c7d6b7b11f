from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from compliance import api as compliance_api
from compliance import challenge_api
from compliance import challenge_views
from compliance import views as compliance_views
from portal import api as portal_api
from portal import password_reset
from portal import views as portal_views
from projects import api as projects_api
from projects import views as project_views

router = DefaultRouter()
router.register("programmes", projects_api.ProgrammeViewSet, basename="api-programme")
router.register("projects", projects_api.ProjectViewSet, basename="api-project")
router.register("submissions", projects_api.SubmissionViewSet, basename="api-submission")
router.register("artifacts", projects_api.ArtifactViewSet, basename="api-artifact")
router.register("uploads", projects_api.UploadViewSet, basename="api-upload")
router.register("check-runs", compliance_api.CheckRunViewSet, basename="api-checkrun")
router.register("findings", compliance_api.FindingViewSet, basename="api-finding")
router.register("dossiers", compliance_api.DossierViewSet, basename="api-dossier")
router.register("queue", compliance_api.QueueViewSet, basename="api-queue")
router.register("submission-decisions", compliance_api.SubmissionDecisionViewSet, basename="api-submission-decision")
router.register("challenges", challenge_api.ChallengeViewSet, basename="api-challenge")
router.register("public-challenges", challenge_api.PublicChallengeViewSet, basename="api-public-challenge")
router.register("tokens", portal_api.ApiTokenViewSet, basename="api-token")
router.register("notifications", portal_api.NotificationViewSet, basename="api-notification")

urlpatterns = [
    path("", portal_views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Forgotten passwords (#12): ask, "sent", choose (also the invitation link), done
    path("accounts/password/reset/", password_reset.password_reset, name="password_reset"),
    path("accounts/password/reset/sent/", password_reset.password_reset_done, name="password_reset_done"),
    path("accounts/reset/<uidb64>/<token>/", password_reset.password_reset_confirm, name="password_reset_confirm"),
    path("accounts/password/reset/complete/", password_reset.password_reset_complete,
         name="password_reset_complete"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("audit/", portal_views.audit_log, name="audit-log"),
    # API tokens (#12): everyone's own
    path("account/tokens/", portal_views.api_tokens, name="api-tokens"),
    path("account/two-factor/setup/", portal_views.two_factor_setup, name="two-factor-setup"),
    path("account/two-factor/verify/", portal_views.two_factor_verify, name="two-factor-verify"),
    # Passkeys (WebAuthn, django-otp-webauthn): the JSON ceremonies sit under /account/two-factor/
    # (reachable before the second factor, as signing in with a passkey needs); the page that lists,
    # names and removes them needs a verified session.
    path("account/two-factor/passkey/", include("portal.passkey_ceremonies")),
    path("account/passkeys/", portal_views.passkeys, name="passkeys"),
    path("account/passkeys/<int:pk>/name/", portal_views.passkey_rename, name="passkey-rename"),
    path("account/passkeys/<int:pk>/remove/", portal_views.passkey_remove, name="passkey-remove"),
    path("account/tokens/<str:token_key>/revoke/", portal_views.api_token_revoke, name="api-token-revoke"),
    # Registry and vendor intake
    path("programmes/", project_views.programme_list, name="programme-list"),
    path("programmes/new/", project_views.programme_create, name="programme-create"),
    path("programmes/<int:pk>/", project_views.programme_detail, name="programme-detail"),
    path("programmes/<int:pk>/policy/", compliance_views.policy_edit, name="policy-edit"),
    path("projects/", project_views.project_list, name="project-list"),
    path("projects/new/", project_views.project_create, name="project-create"),
    path("projects/<int:pk>/", project_views.project_detail, name="project-detail"),
    path("projects/<int:pk>/reviewers/", project_views.project_reviewer_assign, name="project-reviewers"),
    path("projects/<int:pk>/invite/", project_views.project_vendor_invite, name="project-invite"),
    path("projects/<int:pk>/submissions/new/", project_views.submission_open, name="submission-open"),
    path("submissions/<int:pk>/edit/", project_views.submission_edit, name="submission-edit"),
    path("submissions/<int:pk>/upload/", project_views.artifact_upload, name="artifact-upload"),
    path("submissions/<int:pk>/declaration/", project_views.declaration_save, name="declaration-save"),
    path("submissions/<int:pk>/sign/", project_views.declaration_sign, name="declaration-sign"),
    path("submissions/<int:pk>/submit/", project_views.submission_submit, name="submission-submit"),
    path("artifacts/<int:pk>/delete/", project_views.artifact_delete, name="artifact-delete"),
    # Judgement
    path("dashboard/", compliance_views.dashboard, name="dashboard"),
    path("queue/", compliance_views.queue, name="review-queue"),
    path("submissions/<int:pk>/", compliance_views.submission_detail, name="submission-detail"),
    path("submissions/<int:pk>/decide/", compliance_views.submission_decide, name="submission-decide"),
    path("findings/<int:pk>/decide/", compliance_views.finding_decide, name="finding-decide"),
    path("check-runs/<int:pk>/rerun/", compliance_views.check_rerun, name="check-rerun"),
    path("submissions/<int:pk>/dossiers/", compliance_views.dossier_request, name="dossier-request"),
    path("dossiers/<int:pk>/download/", compliance_views.dossier_download, name="dossier-download"),
    path("dossiers/<int:pk>/retry/", compliance_views.dossier_retry, name="dossier-retry"),
    path("verify/", compliance_views.dossier_verify_page, name="dossier-verify"),
    path("workers/", compliance_views.workers, name="workers"),
    path("references/", compliance_views.reference_list, name="reference-list"),
    # Notifications (issue #13): the list, following one, marking read, e-mail settings
    path("notifications/", portal_views.notification_list, name="notification-list"),
    path("notifications/settings/", portal_views.notification_settings, name="notification-settings"),
    path("notifications/read-all/", portal_views.notification_read_all, name="notification-read-all"),
    path("notifications/<int:pk>/open/", portal_views.notification_open, name="notification-open"),
    path("notifications/<int:pk>/read/", portal_views.notification_read, name="notification-read"),
    # Lists (issue #13): the findings list and saved filters of list pages
    path("findings/", compliance_views.finding_list, name="finding-list"),
    path("saved-filters/", portal_views.saved_filter_create, name="saved-filter-create"),
    path("saved-filters/<int:pk>/delete/", portal_views.saved_filter_remove, name="saved-filter-delete"),
    # Conversations on findings (vendor replies, reviewers' questions and notes, attachments)
    path("findings/<int:pk>/messages/", compliance_views.finding_message, name="finding-message"),
    path("finding-messages/<int:pk>/attachment/", compliance_views.finding_message_attachment,
         name="finding-message-attachment"),
    # Public challenges (issue #15): anonymous filing and confirmation, triage, reply, register
    path("challenges/", challenge_views.challenge_list, name="challenge-list"),
    path("challenges/new/", challenge_views.challenge_new, name="challenge-new"),
    path("challenges/register/", challenge_views.challenge_register, name="challenge-register"),
    path("challenges/confirm/<str:token>/", challenge_views.challenge_confirm, name="challenge-confirm"),
    path("challenges/<int:pk>/", challenge_views.challenge_detail, name="challenge-detail"),
    path("challenges/<int:pk>/act/", challenge_views.challenge_act, name="challenge-act"),
    path("challenges/<int:pk>/files/<int:file_pk>/", challenge_views.challenge_file_download, name="challenge-file"),
    # API
    path("api/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]

handler400 = "portal.views.bad_request"
handler404 = "portal.views.page_not_found"
