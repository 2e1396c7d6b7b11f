"""A believable, entirely fictional dossier context for tests, benchmarks and demos.

Organisations, people and models here are invented (no real company or
person: a demo finding of undeclared derivation against a real vendor would
be defamatory). Real public models appear only as reference models.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import random

from compliance.dossier.context import (
    ArtifactInfo,
    AuditEventInfo,
    CheckInfo,
    CodeMatchRow,
    DeclarationInfo,
    DeclaredComponent,
    DecisionInfo,
    DossierContext,
    FindingInfo,
    InputHash,
    LicenceRow,
    LineageLayer,
    LineageResult,
    MessageInfo,
    ProgrammeInfo,
    ProjectInfo,
    SEVERITY_ORDER,
    SignOff,
    SubmissionInfo,
)

__all__ = ["sample_context_build", "sample_context_at_limits", "HOSTILE_STRINGS", "LIMITS", "LEGACY"]

# What a hostile vendor might type into any free-text field.
HOSTILE_STRINGS = [
    '<img src="http://attacker.invalid/pixel.png">',
    "<style>body{background:url(http://attacker.invalid/css)}</style>",
    '<link rel="stylesheet" href="file:///etc/passwd">',
    "file:///etc/passwd",
    "<script>alert(1)</script>",
    "<svg><image href=\"http://attacker.invalid/svg\"/></svg>",
    "{{ secret }} {% debug %}",
    "url('http://attacker.invalid/u')",
]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _django_ready() -> bool:
    try:
        from django.apps import apps
    except ImportError:  # pragma: no cover - Django is a runtime dependency
        return False
    return apps.ready


def _vocabulary(lang: str) -> dict[str, dict[str, str]]:
    """The models' words when Django is set up (tests, the demo); without it (bench/dossier.py
    renders with no settings) the raw values show, which is what the renderer does for any
    value the vocabulary lacks."""
    if not _django_ready():
        return {}
    from compliance.dossier.context import dossier_vocabulary

    return dossier_vocabulary(lang=lang)


def _open_risk(status: str, severity: str) -> bool:
    """The model's own answer (an unsaved Finding needs no database) when Django is set up."""
    if not _django_ready():
        return False
    from compliance.models import Finding

    return Finding(status=status, severity=severity).is_open_risk


def sample_context_build(*, lang: str = "en", findings: int = 12, layers: int = 24, hostile: bool = False, seed: int = 7) -> DossierContext:
    """Return a complete fictional :class:`DossierContext`.

    ``findings`` findings spread over the five severities, a lineage check
    with ``layers`` layers, a licence scan and a code-match check. With
    ``hostile``, every vendor-controlled string carries HTML/CSS/URL payloads.
    """
    rng = random.Random(seed)
    base = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc)
    ko = lang == "ko"

    def vendor_text(text: str, index: int = 0) -> str:
        if not hostile:
            return text
        return f"{text} {HOSTILE_STRINGS[index % len(HOSTILE_STRINGS)]}"

    vendor = vendor_text("한빛AI 컨소시엄 (Hanbit AI Consortium)", 0)
    artifacts = [
        ArtifactInfo(1, "weights", vendor_text("model-00001-of-00002.safetensors", 1), 4_983_221_120, _sha("w1"), base, vendor_text("김서연", 2), "Apache-2.0"),
        ArtifactInfo(2, "weights", vendor_text("model-00002-of-00002.safetensors", 3), 2_114_004_992, _sha("w2"), base, vendor_text("김서연", 2), "Apache-2.0"),
        ArtifactInfo(3, "config", "config.json", 1_204, _sha("cfg"), base, "김서연", "Apache-2.0"),
        ArtifactInfo(4, "tokenizer", "tokenizer.json", 9_443_112, _sha("tok"), base, "Park Jiho", "Apache-2.0"),
        ArtifactInfo(5, "source_archive", vendor_text("training-code.tar.gz", 4), 31_554_080, _sha("src"), base, "Park Jiho", "Apache-2.0"),
        ArtifactInfo(6, "model_card", "README.md", 14_882, _sha("card"), base, "Park Jiho", ""),
    ]
    inputs = [InputHash(a.filename, a.sha256) for a in artifacts[:3]]
    lineage_layers = []
    for i in range(layers):
        # Layers 0-5 of the vision encoder match the reference one-to-one
        # (reused weights); the rest look independent.
        if i < 6:
            # Candidate layer names come from the vendor's tensor names: untrusted.
            name = vendor_text(f"vision.layers.{i}", i) if i == 0 else f"vision.layers.{i}"
            lineage_layers.append(LineageLayer(name, f"visual.blocks.{i}", 10 ** -(30 + i), 0.995))
        elif i % 7 == 0:
            lineage_layers.append(LineageLayer(f"vision.layers.{i}", None, 0.62, 0.01))
        else:
            lineage_layers.append(LineageLayer(f"vision.layers.{i}", f"visual.blocks.{rng.randrange(layers)}", rng.uniform(0.05, 0.9), rng.uniform(-0.05, 0.05)))
    checks = [
        CheckInfo(
            id=101,
            name="Weight lineage: vision encoder vs Qwen2.5-VL-7B" if not ko else "가중치 계보: 비전 인코더 대 Qwen2.5-VL-7B",
            kind="lineage",
            method=(
                "Compares each layer's weights with every layer of a known public model, "
                "after undoing permutations, and asks how likely such similarity is by chance."
                if not ko
                else "각 층의 가중치를 공개 모델의 모든 층과 비교하고, 그런 유사도가 우연히 나올 확률을 계산합니다."
            ),
            engine_version="lineage 0.4.1",
            verdict="fail",
            summary="6 of 24 vision-encoder layers match reference layers (p < 1e-30)" if not ko else "비전 인코더 24개 층 중 6개가 기준 모델 층과 일치 (p < 1e-30)",
            claimed=vendor_text("Vision encoder trained from scratch", 5),
            inputs=inputs,
            started_at=base + dt.timedelta(hours=1),
            duration_s=412.7,
            lineage=[
                LineageResult(
                    reference_model="Qwen2.5-VL-7B-Instruct",
                    statistic_name="Pearson r after permutation matching",
                    p_value=1e-30,
                    conclusion="derived" if not ko else "파생됨",
                    layers=lineage_layers,
                    component="vision encoder",
                    reference_sha256=_sha("qwen"),
                ),
                LineageResult(
                    reference_model="all-MiniLM-L6-v2",
                    statistic_name="Pearson r after permutation matching",
                    p_value=0.41,
                    conclusion="independent" if not ko else "독립적",
                    layers=[],
                    component="text decoder",
                ),
            ],
        ),
        CheckInfo(
            id=102,
            name="Licence inventory" if not ko else "라이선스 목록",
            kind="licence",
            method="Detects licence texts and SPDX tags in every file and applies the programme policy."
            if not ko
            else "모든 파일의 라이선스 문구와 SPDX 태그를 찾아 사업 정책을 적용합니다.",
            engine_version="licenses 0.3.0 (ScanCode index 32.2)",
            verdict="review",
            summary="1 licence needs review" if not ko else "검토가 필요한 라이선스 1건",
            claimed="Apache-2.0",
            inputs=[InputHash(artifacts[4].filename, artifacts[4].sha256)],
            started_at=base + dt.timedelta(hours=1, minutes=3),
            duration_s=38.2,
            licences=[
                LicenceRow("training/", "Apache-2.0", "allowed", ["Keep NOTICE file", "State changes"], "detected"),
                LicenceRow(vendor_text("third_party/fused_attn/", 6), "BSD-3-Clause", "allowed", ["Keep copyright notice"], "detected"),
                LicenceRow("third_party/vision_utils/", "LicenseRef-qwen-research", "review", ["Research use only?"], "detected"),
                LicenceRow("model weights", "Apache-2.0", "allowed", [], "declared"),
            ],
        ),
        CheckInfo(
            id=103,
            name="Code provenance" if not ko else "코드 출처",
            kind="code",
            method="Fingerprints every source file and looks it up in known public code corpora."
            if not ko
            else "모든 소스 파일의 지문을 만들어 알려진 공개 코드와 대조합니다.",
            engine_version="codematch 0.2.0",
            verdict="pass",
            summary="Matches only in inference code, with compatible licences" if not ko else "추론 코드에서만 일치, 라이선스 호환",
            claimed="Own training code",
            inputs=[InputHash(artifacts[4].filename, artifacts[4].sha256)],
            started_at=base + dt.timedelta(hours=1, minutes=5),
            duration_s=95.0,
            code_matches=[
                CodeMatchRow("inference/kv_cache.py", "vllm-project/vllm@v0.6.0", "Apache-2.0", 0.93, 188, "inference"),
                CodeMatchRow(vendor_text("inference/rope.py", 7), "huggingface/transformers@v4.44", "Apache-2.0", 0.71, 42, "inference"),
            ],
        ),
    ]
    severities = list(SEVERITY_ORDER)
    finding_rows = []
    for i in range(findings):
        severity = severities[min(len(severities) - 1, int(rng.random() ** 1.5 * len(severities)))] if i else "critical"
        decided = i % 3 != 2
        status = ["confirmed", "waived", "false_positive"][i % 3] if decided else "open"
        finding_rows.append(
            FindingInfo(
                id=1000 + i,
                severity=severity,
                category=["lineage", "licence", "code", "evidence"][i % 4],
                title=vendor_text("Undeclared reuse of vision-encoder weights", i) if hostile and i < len(HOSTILE_STRINGS) else ("Undeclared reuse of vision-encoder weights" if i == 0 else f"Finding {i}: {['licence needs review', 'matched file', 'missing step-0 checkpoint', 'tokenizer overlap'][i % 4]}")
                if not ko
                else ("비전 인코더 가중치의 미신고 재사용" if i == 0 else f"발견 {i}: {['라이선스 검토 필요', '일치 파일', '0단계 체크포인트 없음', '토크나이저 중복'][i % 4]}"),
                explanation="Layers 0-5 correlate with the reference at r > 0.99; chance probability below 1e-30."
                if i == 0
                else "See the evidence values.",
                evidence={"p_value": 1e-30, "layers": 6, "reference": "Qwen2.5-VL-7B-Instruct"}
                if i == 0
                else {"index": i, "score": round(rng.random(), 3), **({"matched_file": vendor_text("src/x.py", i)} if hostile else {})},
                check_id=checks[i % 3].id,
                messages=[
                    MessageInfo(side="ministry", kind="question", author="이도윤 (Reviewer)", at=base + dt.timedelta(days=1, minutes=i),
                                body="Which checkpoint did training start from?" if not ko else "학습은 어느 체크포인트에서 시작했습니까?"),
                    MessageInfo(side="vendor", kind="reply", author=vendor_text("Kim Minji", i), at=base + dt.timedelta(days=1, hours=3, minutes=i),
                                body=vendor_text("We re-initialised the encoder before training; logs attached." if not ko else "학습 전에 인코더를 재초기화했습니다. 로그를 첨부합니다.", i),
                                attachment_name=vendor_text("init-log.txt", i), attachment_sha256=hashlib.sha256(f"log {i}".encode()).hexdigest()),
                ],
                decision=DecisionInfo(
                    outcome=status,
                    justification="Correlation is far beyond what re-initialisation allows." if not ko else "재초기화로는 설명할 수 없는 상관관계입니다.",
                    reviewer="이도윤 (Reviewer)",
                    decided_at=base + dt.timedelta(days=2, minutes=i),
                ) if decided else None,
                status=status,
                open_risk=_open_risk(status, severity),
            )
        )
    audit = [
        AuditEventInfo(base + dt.timedelta(minutes=5 * i), actor, action, target, _sha(f"audit{i}"))
        for i, (actor, action, target) in enumerate(
            [
                ("김서연", "artifact.upload", artifacts[0].filename),
                ("김서연", "declaration.sign", "declaration v3"),
                ("Park Jiho", "submission.submit", "submission v3"),
                ("worker-2", "check.done", "check 101"),
                ("이도윤", "finding.decide", "finding 1000"),
                ("최민준", "dossier.request", "dossier"),
            ]
        )
    ]
    return DossierContext(
        programme=ProgrammeInfo(
            name="독자 AI 파운데이션 모델 프로젝트" if ko else "Sovereign AI Foundation Model Programme",
            ministry="과학기술정보통신부 (fictional demo)" if ko else "Ministry of Science and ICT (fictional demo)",
            code="SAIF-2026",
        ),
        project=ProjectInfo(
            name=vendor_text("한빛-VL 30B 멀티모달 모델", 1),
            vendor=vendor,
            code="SAIF-2026-07",
            consortium=[vendor_text("한빛AI", 2), "Daon Data Co.", "Seoul Institute of Learning (fictional)"],
        ),
        submission=SubmissionInfo(id=42, version=3, status="under_review", submitted_at=base, submitted_by="Park Jiho"),
        declaration=DeclarationInfo(
            from_scratch=True,
            components=[
                DeclaredComponent("text decoder", None, "Apache-2.0", vendor_text("Random init, 2.1T tokens", 3)),
                DeclaredComponent("vision encoder", None, "Apache-2.0", vendor_text("Trained from scratch", 4)),
                DeclaredComponent("tokenizer", None, "Apache-2.0", ""),
            ],
            compute=vendor_text("1.9e24 FLOPs on 1,024 accelerators, 41 days", 5),
            data_summary=vendor_text("Korean web, books, code; 2.1T tokens", 6),
            signed_by="Park Jiho",
            signed_at=base - dt.timedelta(hours=2),
        ),
        artifacts=artifacts,
        checks=checks,
        findings=finding_rows,
        audit_events=audit,
        sign_offs=[SignOff("이도윤", "Lead reviewer", base + dt.timedelta(days=3), vendor_text("Findings reviewed", 7))],
        dossier_number="SAIF-2026-07-S42-D001",
        issued_at=base + dt.timedelta(days=3, hours=2),
        lang=lang,
        overall_status="rejected",
        overall_decision="Vision encoder reuse not declared; resubmission required." if not ko else "비전 인코더 재사용 미신고, 재제출 필요.",
        verify_url="https://portal.example.invalid/verify/",
        vocabulary=_vocabulary(lang),
    )


# The field limits a submission is held to (projects' forms, API and services), and what data
# from before those limits may hold: the dossier must render both within its time limit.
LIMITS = {"data_summary": 20_000, "base_models": 100, "third_party_code": 100, "reply": 10_000, "filename": 255}
LEGACY = {"data_summary": 1_000_000, "base_models": 1_000, "third_party_code": 1_000, "reply": 100_000, "filename": 500}


def _long_text(length: int, word: str = "Korean web text, books and code; ") -> str:
    return (word * (length // len(word) + 1))[:length]


def sample_context_at_limits(*, lang: str = "en", legacy: bool = False, findings: int = 250) -> DossierContext:
    """The sample with every vendor-controlled field and table at its limit (``legacy``: at what
    older data may hold), and findings whose replies are as long as a reply may be. Half of each
    long field is one unbroken word, the case WeasyPrint lays out slowest."""
    bounds = LEGACY if legacy else LIMITS
    context = sample_context_build(lang=lang, findings=findings)
    unbroken = "x" * (bounds["filename"] // 2)
    context.declaration.data_summary = _long_text(bounds["data_summary"] // 2) + "y" * (bounds["data_summary"] // 2)
    context.declaration.components = [
        DeclaredComponent(f"backbone {i} {unbroken}", f"base-model-{i}-{unbroken}", "Apache-2.0", _long_text(600))
        for i in range(bounds["base_models"])
    ] + [
        DeclaredComponent(f"third-party code (inference) {i}", f"package-{i} 1.0.{i}", "MIT", f"https://example.invalid/{unbroken}/{i}", third_party=True)
        for i in range(bounds["third_party_code"])
    ]
    # Each conversation longer than print shows (MESSAGES_PER_FINDING_SHOWN), every message as long
    # as a message may be, with an attachment whose name is as long as a file name may be.
    # Older data holds one long reply per finding (the single reply, moved into a first message).
    long_message = _long_text(bounds["reply"] // 2) + "z" * (bounds["reply"] // 2)
    for finding in context.findings:
        finding.messages = [
            MessageInfo(side="vendor" if n % 2 else "ministry", kind="reply" if n % 2 else "question",
                        author="a" * 200, at=context.issued_at, body=long_message,
                        attachment_name="m" * bounds["filename"], attachment_sha256="0" * 64)
            for n in range(1 if legacy else 5)
        ]
    context.artifacts = [
        dataclasses.replace(context.artifacts[i % len(context.artifacts)], id=100 + i, filename=f"{i:03d}-" + "f" * (bounds["filename"] - 4))
        for i in range(120)
    ]
    code, licences = context.checks[2], context.checks[1]
    code.code_matches = [dataclasses.replace(code.code_matches[0], path=f"src/{i}/{unbroken}.py") for i in range(500)]
    licences.licences = [dataclasses.replace(licences.licences[0], subject=f"third_party/{i}/{unbroken}") for i in range(500)]
    return context
