"""Load the demo: a programme modelled on a national foundation-model programme, five
fictional vendor consortia, one submission each with a small model directory in the
real Hugging Face layout, the real all-MiniLM-L6-v2 as a reference model, the real
gguf-py package (llama.cpp, MIT) as the reference code corpus, and demo
users whose logins are printed. Idempotent: running it again changes nothing.
"""

from __future__ import annotations

import datetime
import json
import secrets
import tempfile
import zlib
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management.base import BaseCommand
from django.db import transaction

from compliance import demo
from compliance.models import CodeCorpus, ReferenceModel
from compliance.services.policy import programme_policy_update
from portal.models import Organisation, Role
from portal.services import user_create
from projects import services as project_services
from projects import uploads
from projects.models import Programme, Project

PROGRAMME_CODE = "sfm-2026"

VENDORS = [
    # (code, English name, Korean name, project title, Korean title, funding in KRW, phase)
    ("hanbit", "Hanbit AI Labs", "한빛AI연구소", "Hanbit-Embed sentence encoder", "한빛 임베딩 문장 인코더",
     Decimal("24000000000"), 2),
    ("saebyeok", "Saebyeok Intelligence", "새벽인텔리전스", "Saebyeok-LM 7B foundation model",
     "새벽-LM 7B 파운데이션 모델", Decimal("31000000000"), 2),
    ("gureum", "Gureum Systems", "구름시스템즈", "Gureum-MoE multilingual model", "구름-MoE 다국어 모델",
     Decimal("28500000000"), 1),
    ("mirae", "Mirae Language Works", "미래언어공작소", "Mirae-Ko legal-domain model", "미래-Ko 법률 특화 모델",
     Decimal("12000000000"), 1),
    ("doran", "Doran AI Consortium", "도란AI컨소시엄", "Doran-VL vision-language model", "도란-VL 시각언어 모델",
     Decimal("19500000000"), 1),
]

STAFF = [
    ("admin", Role.ADMIN, "Kim Minji (demo administrator)"),
    ("officer", Role.OFFICER, "Lee Junho (programme officer)"),
    ("reviewer", Role.REVIEWER, "Park Seoyeon (reviewer)"),
    ("reviewer2", Role.REVIEWER, "Choi Dohyun (reviewer, unassigned)"),
    ("auditor", Role.AUDITOR, "Jung Hana (auditor)"),
]


class Command(BaseCommand):
    help = "Load the demo programme, vendors, users and submissions (idempotent) and print the logins."

    def add_arguments(self, parser):
        parser.add_argument("--no-submit", action="store_true", help="Leave the demo submissions as drafts.")
        parser.add_argument("--quiet", action="store_true", help="Do not print the logins.")

    def handle(self, *args, **options):
        logins = self._logins()
        User = get_user_model()
        if Programme.objects.filter(code=PROGRAMME_CODE).exists():
            self._second_factors()
            if not options["quiet"]:
                self._print_logins(logins)
            self.stdout.write("Demo data already loaded; nothing changed.")
            return
        with transaction.atomic():
            ministry, _ = Organisation.objects.get_or_create(
                name="Ministry of Digital Sovereignty (demo)",
                defaults={"name_ko": "디지털주권부 (데모)", "kind": Organisation.Kind.MINISTRY})
            users = {}
            for username, role, display in STAFF:
                users[username] = User.objects.filter(username=username).first() or user_create(
                    username=username, password=logins[username], organisation=ministry, role=role,
                    display_name=display, email=f"{username}@ministry.example")
            admin = users["admin"]
            programme = project_services.programme_create(
                user=admin, name="Sovereign Foundation Model Programme 2026", name_ko="독자 AI 파운데이션 모델 사업 2026",
                code=PROGRAMME_CODE, ministry=ministry, budget_krw=Decimal("240000000000"),
                starts_on=datetime.date(2026, 1, 1), ends_on=datetime.date(2027, 12, 31),
                max_artifact_bytes=50 * 1024**3)
            references = self._references()
            corpora = self._code_corpora()
            programme_policy_update(
                user=admin, programme=programme,
                allowed="Apache-2.0\nMIT\nBSD-3-Clause\nBSD-2-Clause\nCC-BY-4.0",
                denied="LicenseRef-scancode-llama-3.1\nCC-BY-NC-4.0\nAGPL-3.0-only",
                review="LicenseRef-scancode-qwen-2024\nGPL-3.0-only\nLGPL-3.0-only",
                from_scratch_required=True, reference_models=references, code_corpora=corpora,
                denied_categories=["non-commercial"], review_categories=["copyleft", "source-available"])
            projects = []
            for code, name, name_ko, title, title_ko, funding, phase in VENDORS:
                vendor, _ = Organisation.objects.get_or_create(
                    name=name, defaults={"name_ko": name_ko, "kind": Organisation.Kind.VENDOR})
                project = project_services.project_create(
                    user=admin, programme=programme, code=code, title=title, title_ko=title_ko, vendor=vendor,
                    funding_krw=funding, phase=phase,
                    consortium_members=[name, f"{name_ko} 컨소시엄 대학 (demo university)"],
                    milestones=[("Phase 1 checkpoint and declaration", datetime.date(2026, 6, 30)),
                                ("Phase 2 release candidate", datetime.date(2027, 3, 31))])
                username = f"{code}-vendor"
                users[username] = User.objects.filter(username=username).first() or user_create(
                    username=username, password=logins[username], organisation=vendor, role=Role.VENDOR,
                    display_name=f"{name} engineer", email=f"{username}@vendor.example")
                project_services.reviewer_assign(user=admin, project=project, reviewer=users["reviewer"])
                projects.append((code, project, users[username]))
            for code, project, vendor_user in projects:
                self._submission(code=code, project=project, user=vendor_user, submit=not options["no_submit"])
        self._second_factors()
        if not options["quiet"]:
            self._print_logins(logins)
        self.stdout.write(self.style.SUCCESS(f"Demo loaded: programme {PROGRAMME_CODE}, {len(projects)} projects."))

    def _logins(self) -> dict[str, str]:
        """Random demo passwords, generated once into an ignored file and reused."""
        path = Path(settings.VAR_DIR) / "demo_logins.json"
        logins = json.loads(path.read_text()) if path.exists() else {}
        names = [s[0] for s in STAFF] + [f"{v[0]}-vendor" for v in VENDORS]
        changed = False
        for name in names:
            if name not in logins:
                logins[name] = secrets.token_urlsafe(9)
                changed = True
        if changed:
            path.write_text(json.dumps(logins, indent=2))
            path.chmod(0o600)
        return logins

    def _second_factors(self) -> None:
        """Ministry staff must pass a second factor (portal.second_factor); the demo enrols each demo
        staff login with an authenticator key, printed with the logins, so a visitor can add it to an
        app or ask `manage.py demo_otp NAME` for the current code."""
        from django_otp.plugins.otp_totp.models import TOTPDevice

        User = get_user_model()
        for username, _role, _display in STAFF:
            user = User.objects.filter(username=username).first()
            if user is not None and not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
                TOTPDevice.objects.create(user=user, name="demo authenticator", confirmed=True)

    def _print_logins(self, logins: dict[str, str]) -> None:
        from base64 import b32encode

        from django_otp.plugins.otp_totp.models import TOTPDevice

        keys = {d.user.username: b32encode(d.bin_key).decode()
                for d in TOTPDevice.objects.filter(confirmed=True, user__username__in=[s[0] for s in STAFF])
                .select_related("user")}
        self.stdout.write("\nDemo logins (http://127.0.0.1:8000/accounts/login/):")
        for name, password in logins.items():
            extra = f"  second factor: key {keys[name]}" if name in keys else ""
            self.stdout.write(f"  {name:<18} {password}{extra}")
        self.stdout.write("Ministry staff sign in with a second factor: add the key to an authenticator app, or run\n"
                          "  .venv/bin/python manage.py demo_otp NAME\nfor the current code.")
        self.stdout.write("")

    def _references(self) -> list[ReferenceModel]:
        """all-MiniLM-L6-v2 (real, from PyPI) and the public configs' models as references."""
        refs = []
        minilm = demo.minilm_dir()
        ref, _ = ReferenceModel.objects.get_or_create(
            name="sentence-transformers/all-MiniLM-L6-v2",
            defaults={"publisher": "sentence-transformers", "license_expression": "Apache-2.0",
                      "source_url": "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
                      "architecture": "BertModel", "parameters": 22_713_216})
        if minilm is not None and not ref.bundle:
            self._attach_bundle(ref, minilm)
        refs.append(ref)
        return refs

    def _code_corpora(self) -> list[CodeCorpus]:
        """gguf-py (llama.cpp's GGUF package, MIT), real and installed, as the reference code corpus."""
        from compliance.engine.codematch import code_index_add
        from compliance.references import code_corpus_record

        root = demo.code_package_root()
        if root is None:
            return []
        import importlib.metadata

        version = importlib.metadata.version(demo.DEMO_CODE_PACKAGE)
        corpus = CodeCorpus.objects.filter(name="gguf-py", version=version).first()
        if corpus is None:
            summary = code_index_add(index_dir=str(settings.CODE_INDEX_DIR), source=str(root), name="gguf-py",
                                     version=version, license_expression="MIT")
            corpus = code_corpus_record(summary=summary.to_dict())
        return [corpus]

    def _attach_bundle(self, ref: ReferenceModel, model_dir: Path) -> None:
        try:
            from compliance.references import reference_bundle_attach
        except ImportError:
            return
        reference_bundle_attach(reference=ref, model_path=model_dir)

    def _submission(self, *, code: str, project: Project, user, submit: bool) -> None:
        submission = project_services.submission_open(user=user, project=project,
                                                      note="Phase checkpoint for review.")
        with tempfile.TemporaryDirectory(prefix="demo-") as tmp:
            model_dir = Path(tmp) / f"{code}-model"
            derived = None
            if code == "hanbit":
                derived = demo.minilm_derivative_write(target=model_dir, seed=7)
            if derived is None:
                demo.llama_like_write(target=model_dir, seed=zlib.crc32(code.encode()), name=project.title)
            for path in sorted(model_dir.iterdir()):
                kind = {"config.json": "config", "tokenizer.json": "tokenizer", "vocab.txt": "tokenizer",
                        "README.md": "model_card", "model.safetensors": "weights"}.get(path.name, "other")
                with open(path, "rb") as fh:
                    uploads.artifact_upload_file(user=user, submission=submission, kind=kind,
                                                 filename=f"{code}-model/{path.name}", fileobj=File(fh))
            # Two vendors ship code taken from the indexed gguf-py: saebyeok without saying so,
            # gureum declaring it (the copied-code check tells the two apart).
            extra = {}
            package = demo.code_package_root()
            if package is not None and code == "saebyeok":
                extra["inference/quantize.py"] = ("# Saebyeok quantisation helpers\n\nimport numpy as np\n\n"
                                                  + demo.copied_code(path=package / "quants.py"))
            if package is not None and code == "gureum":
                extra["serving/lazy_tensors.py"] = demo.copied_code(path=package / "lazy.py", min_lines=60)
            archive = demo.source_archive_write(target=Path(tmp) / f"{code}-src.tar.gz", project_name=f"{code}-lm",
                                                extra=extra)
            with open(archive, "rb") as fh:
                uploads.artifact_upload_file(user=user, submission=submission, kind="source_archive",
                                             filename=archive.name, fileobj=File(fh))
        from_scratch = True
        project_services.declaration_update(
            user=user, submission=submission, from_scratch=from_scratch,
            base_models=[] if code != "doran" else [
                {"component": "vision_encoder", "name": "openai/clip-vit-large-patch14", "source": "Hugging Face",
                 "license": "MIT"}],
            third_party_code=[] if code != "gureum" else [
                {"name": "gguf-py", "version": "", "license": "MIT", "use": "inference",
                 "source": "https://github.com/ggml-org/llama.cpp/tree/master/gguf-py"}],
            gpu_hours=Decimal("182000"), training_flops=3.1e23,
            data_summary="Korean web text, public-domain books and licensed news (demo).")
        project_services.declaration_sign(user=user, submission=submission,
                                          signatory_name=f"{project.vendor.name} representative", attest=True)
        if submit:
            project_services.submission_submit(user=user, submission=submission)
