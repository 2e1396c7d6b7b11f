"""One ScanCode licence index per process, plus the facts we derive from it.

Loading ScanCode's pickled index of 37,542 rules takes 6-8 s on this 2-core
machine (measured 2026-11: 6.4 s warm, 7.7 s cold page cache), so it is loaded
lazily, once, and shared by every scan in the process. Nothing here runs at
import time: importing the licence engine stays cheap for the policy code,
which never needs ScanCode.
"""

from __future__ import annotations

import threading
import time
from functools import partial
from itertools import chain, islice
from operator import is_not
from dataclasses import dataclass, field
from importlib import metadata

_LOCK = threading.Lock()
_LOAD_LOCK = threading.Lock()
_STATE: "ScancodeState | None" = None

# Words a licence reference can hang on even though ScanCode's legal
# vocabulary lacks them (SPDX tags, package metadata field names).
EXTRA_TRIGGER_WORDS = frozenset({"spdx", "licenseid", "licenseref", "license", "licence", "licensed", "copyright"})


@dataclass
class ScancodeState:
    """The loaded index and what the fast paths need from it."""

    index: object
    licensing: object
    licenses_db: dict
    version: str
    rules_count: int
    load_seconds: float
    trigger_words: frozenset = field(default_factory=frozenset)
    weak_trigger_words: frozenset = field(default_factory=frozenset)

    @property
    def rules_version(self) -> str:
        """Cache key part: a new ScanCode release or rule count invalidates cached answers."""
        return f"scancode-toolkit-{self.version}-rules-{self.rules_count}"


def scancode_version() -> str:
    """Installed scancode-toolkit version, or 'missing'."""
    try:
        return metadata.version("scancode-toolkit")
    except metadata.PackageNotFoundError:
        return "missing"


def _trigger_words(index) -> frozenset:
    """Words of which at least one must occur in a file for ScanCode to match anything.

    ScanCode's matchers only start from its 4,356-word legal vocabulary
    ("legalese", the token ids below `len_legalese`) except for 2,069 rules
    made only of ordinary words ("adobe glyph", "licenseid doc"). For each
    of those rules we add its rarest word, so any exact occurrence of such a
    rule still passes the prefilter: the filter can only let too much through,
    never too little.
    """
    import numpy as np

    legalese_count = index.len_legalese
    tokens_by_tid = index.tokens_by_tid
    words = {tokens_by_tid[tid] for tid in range(legalese_count)}
    weak_words = set()
    rule_arrays = [
        np.frombuffer(tids.tobytes(), dtype=np.dtype(tids.typecode)).astype(np.int64)
        for tids in index.tids_by_rid
        if tids is not None and len(tids)
    ]
    frequency = np.bincount(np.concatenate(rule_arrays), minlength=len(tokens_by_tid))
    for array in rule_arrays:
        if array.min() >= legalese_count:
            rarest = int(array[np.argmin(frequency[array])])
            weak_words.add(tokens_by_tid[rarest])
    return frozenset(words | EXTRA_TRIGGER_WORDS), frozenset(weak_words - words)


class _UnknownAutomatonDropped:
    """Stands in for ScanCode's unknown-licence automaton once it is dropped (see below)."""

    def __getattr__(self, name):
        raise RuntimeError(
            "ScanCode's unknown-licence matching (unknown_licenses=True) is not available in the portal: "
            "its automaton is dropped at load (scancode_index._unknown_automaton_drop)"
        )


def _unknown_automaton_drop(index) -> None:
    """Free ScanCode's unknown-licence automaton, which no detection here asks for.

    The index carries two Aho-Corasick automatons: the rules' one (exact matching) and one of
    898,691 n-grams used only by `match(unknown_licenses=True)`, an option of ScanCode's CLI
    that the portal never sets (detect.py calls `detect_licenses` with its default, False; so
    does ScanCode's `get_licenses`). It holds 3.1 M nodes: 194 MB of every checks worker's
    memory (measured: 1,187 -> 993 MB RSS for the loaded state), shared by the scanners but
    counted once in the worker's footprint (freed to the system by `heap_trim` at the end of
    the load). Asking for unknown-licence matching after this
    raises a RuntimeError that says why, rather than answering without it."""
    if isinstance(index.unknown_automaton, _UnknownAutomatonDropped):
        return
    index.unknown_automaton = _UnknownAutomatonDropped()


# -- two of the index's tables, made from the rules' tokens when asked -------------------------
#
# ScanCode keeps, for every rule, a multiset of its token ids (`msets_by_rid`: 36,243 dicts,
# 84 MB) and the positions of its legal tokens (`high_postings_by_rid`: 30,051 dicts of arrays,
# 87 MB). Both are functions of the rule's token ids (`tids_by_rid`, kept), made at index build
# time by `licensedcode.index.LicenseIndex._add_rules`, and both are read for a few candidates of
# a query run only: the multisets of the 10 x top rules `compute_candidates` ranks in its second
# step, the postings of the rules the sequence matcher aligns. So they are made again when asked,
# the way the build made them, and the last few thousand are remembered per process: 171 MB off
# every checks worker's shared footprint, for a few microseconds per candidate the first time.
# Tested equal to ScanCode's own tables for every rule (tests/compliance/engine/licenses).

_RULE_TABLE_MEMO_MAX = 4096


class _RuleTable:
    """A read-only per-rule table (`table[rid]`), made from the rule's token ids on first access.
    None for rules ScanCode gave no entry (`kept` says which rules have one)."""

    __slots__ = ("tids_by_rid", "kept", "memo", "_make", "_length")

    def __init__(self, *, tids_by_rid, kept, make, length: int):
        self.tids_by_rid, self.kept, self._make, self._length = tids_by_rid, kept, make, length
        self.memo: dict = {}

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, rid: int):
        value = self.memo.get(rid)
        if value is None:
            if rid not in self.kept:
                if not 0 <= rid < self._length:
                    raise IndexError(rid)
                return None
            value = self._make(self.tids_by_rid[rid])
            if len(self.memo) >= _RULE_TABLE_MEMO_MAX:
                self.memo.clear()
            self.memo[rid] = value
        return value

    def __iter__(self):
        return (self[rid] for rid in range(self._length))


def _rule_mset(tids):
    """`msets_by_rid[rid]` as `_add_rules` makes it: `build_set_and_mset(tids)`'s multiset."""
    from licensedcode.match_set import build_set_and_mset

    return build_set_and_mset(tids, _use_bigrams=False)[1]


def _rule_high_postings(tids, *, len_legalese: int):
    """`high_postings_by_rid[rid]` as `_add_rules` makes it: each legal token id's positions."""
    from array import array
    from collections import defaultdict

    postings = defaultdict(list)
    for pos, tid in enumerate(tids):
        if tid < len_legalese:
            postings[tid].append(pos)
    return {tid: array("h", value) for tid, value in postings.items()}


def _rule_tables_lazy(index) -> None:
    """Replace the two tables above by `_RuleTable`s, after checking that the build made them as
    expected (a multiset for the regular rules, postings for the approximately matchable ones,
    as `_add_rules` does); a ScanCode that builds them otherwise keeps its own."""
    from licensedcode import index as scancode_index_module

    if isinstance(index.msets_by_rid, _RuleTable) or scancode_index_module.USE_BIGRAM_MULTISETS:
        return
    length = len(index.tids_by_rid)
    with_mset = frozenset(rid for rid, mset in enumerate(index.msets_by_rid) if mset is not None)
    with_postings = frozenset(rid for rid, postings in enumerate(index.high_postings_by_rid) if postings is not None)
    if (len(index.msets_by_rid) != length or len(index.high_postings_by_rid) != length
            or with_mset != frozenset(index.regular_rids)
            or not with_postings <= frozenset(index.approx_matchable_rids)):
        return
    index.msets_by_rid = _RuleTable(tids_by_rid=index.tids_by_rid, kept=with_mset, make=_rule_mset, length=length)
    index.high_postings_by_rid = _RuleTable(
        tids_by_rid=index.tids_by_rid, kept=with_postings,
        make=partial(_rule_high_postings, len_legalese=index.len_legalese), length=length)


def heap_trim() -> None:
    """Hand freed heap pages back to the system (glibc's malloc_trim), before any fork shares them."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def scancode_state_get() -> ScancodeState:
    """Load (first call) and return the process-wide ScanCode index state."""
    global _STATE
    if _STATE is not None:
        return _STATE
    with _LOAD_LOCK:
        if _STATE is not None:
            return _STATE
        started = time.perf_counter()
        try:
            from licensedcode.cache import get_index, get_licenses_db, get_licensing
        except ImportError as error:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "licence detection needs scancode-toolkit==32.5.0 with pluggy==1.6.0 "
                f"installed in the environment ({error})"
            ) from error
        index = get_index()
        _unknown_automaton_drop(index)
        _rule_tables_lazy(index)
        state = ScancodeState(
            index=index,
            licensing=get_licensing(),
            licenses_db=get_licenses_db(),
            version=scancode_version(),
            rules_count=len(index.rules_by_rid),
            load_seconds=0.0,
        )
        state.trigger_words, state.weak_trigger_words = _trigger_words(index)
        state.load_seconds = time.perf_counter() - started
        # The fast paths' tables (about 1.5 s each on this machine), built
        # here so the first file scanned does not pay for them.
        global _FILTER, _EXACT_FILTER
        _FILTER = CandidateFilter(index=index)
        _EXACT_FILTER = ExactMatchFilter(index=index)
        fast_candidates_install()
        lazy_matched_text_install()
        false_positive_fast_install()
        heap_trim()  # the dropped automaton's nodes, and what building the tables freed
        state.load_seconds = time.perf_counter() - started
        _STATE = state
        return state


def scancode_spdx_expression(*, expression: str | None) -> str | None:
    """Convert a ScanCode key expression to SPDX (LicenseRef-scancode-<key> for the rest)."""
    if not expression:
        return None
    from licensedcode.cache import build_spdx_license_expression

    state = scancode_state_get()
    return str(build_spdx_license_expression(expression, licensing=state.licensing))


# -- faster candidate selection for ScanCode's approximate matcher ----------
#
# Profiling the full matcher (cProfile, 200 licence files, 60 METADATA files,
# 300 source files; 2026-11) put 70-85 % of its time in the first loop of
# `licensedcode.match_set.compute_candidates`: for every query run it
# intersects the run's token set with each of the 37,542 rules' token sets in
# Python, only to keep the few hundred rules that share enough legal words.
# `CandidateFilter` computes the same two counts for every rule at once (one
# sparse matrix product: tokens shared, legal tokens shared) and hands
# ScanCode's own `compute_candidates` only the rules that pass ScanCode's own
# thresholds (same integer tests) and can still rank in the top 10 x `top`
# its first pass keeps (its rounded scores bounded one rounding step either
# way). Every rule it keeps goes through ScanCode's own scoring, ranking and
# second pass, so the candidates, and so the matches, are the same: checked
# call by call on 1,583 query runs of 140 installed files (bench notes in
# bench/RESULTS-licenses.md), 20-25x less time. It is switched on per thread
# (`fast_candidates_enabled`), so the reference ScanCode run in
# bench/licenses.py, in the same process, still runs ScanCode's own loop.

_FAST = threading.local()


class CandidateFilter:
    """Rules sharing enough tokens with a query run, for all rules at once.

    Built from the loaded index (about 1-1.5 s, once per process, with the
    index in `scancode_state_get`): a rules x tokens 0/1 matrix of each
    rule's unique tokens, column-major.
    """

    def __init__(self, *, index):
        import numpy as np
        from scipy import sparse

        self.index = index
        rules_count = len(index.rules_by_rid)
        tokens_count = len(index.tokens_by_tid)
        indptr = [0]
        columns = []
        for tids in index.sets_by_rid:
            if tids:
                columns.append(np.fromiter(tids, dtype=np.int32, count=len(tids)))
                indptr.append(indptr[-1] + len(tids))
            else:
                indptr.append(indptr[-1])
        columns = np.concatenate(columns) if columns else np.zeros(0, dtype=np.int32)
        ones = np.ones(len(columns), dtype=np.int64)
        # Column-major: a query touches only its own tokens' columns (0.4-1.3 ms
        # against 3-5 ms for a full row-major product on this machine).
        self.rules_by_tokens = sparse.csr_matrix(
            (ones, columns, np.asarray(indptr, dtype=np.int64)), shape=(rules_count, tokens_count)
        ).tocsc()
        rules = index.rules_by_rid
        self.min_high = np.array([r.get_min_high_matched_length(True) for r in rules], dtype=np.int64)
        self.min_length = np.array([r.get_min_matched_length(True) for r in rules], dtype=np.int64)
        self.length_unique = np.array([r.get_length(True) for r in rules], dtype=np.int64)
        self.minimum_containment = np.array([r._minimum_containment or 0 for r in rules], dtype=np.float64)
        self.high_mask = np.zeros(tokens_count, dtype=np.int64)
        self.high_mask[: index.len_legalese] = 1
        self._matchable_masks: dict[int, object] = {}

    def _matchable_mask(self, matchable_rids):
        import numpy as np

        key = id(matchable_rids)
        cached = self._matchable_masks.get(key)
        if cached is not None and cached[0] is matchable_rids and cached[2] == len(matchable_rids):
            return cached[1]
        mask = np.zeros(self.rules_by_tokens.shape[0], dtype=bool)
        mask[np.fromiter(matchable_rids, dtype=np.int64, count=len(matchable_rids))] = True
        self._matchable_masks[key] = (matchable_rids, mask, len(matchable_rids))
        return mask

    def survivors(
        self, *, qset, matchable_rids, high_resemblance: bool, high_resemblance_threshold: float, top: int
    ) -> list[int]:
        """Rule ids, ascending, that ScanCode's first candidate loop could keep for this token set.

        The tests are ScanCode's own in `compare_token_sets` (tokens shared,
        legal tokens shared, their minimums), on exact integer counts; for a
        near-duplicate search (`high_resemblance`) also resemblance, kept with
        a 0.02 margin so float rounding can only keep a rule ScanCode's loop
        then drops, never the reverse.
        """
        import numpy as np

        tids = np.sort(np.fromiter(qset, dtype=np.int64, count=len(qset)))
        # One product gives both counts: a legal token weighs 1 + 2**20, any
        # other 1 (no rule has 2**20 unique tokens; the longest has a few thousand).
        packed = self.rules_by_tokens[:, tids] @ (1 + self.high_mask[tids] * (1 << 20))
        shared_high = packed >> 20
        shared = packed & ((1 << 20) - 1)
        keep = (
            self._matchable_mask(matchable_rids)
            & (shared_high > 0)
            & (shared_high >= self.min_high)
            & (shared >= self.min_length)
        )
        if high_resemblance:
            union = len(qset) + self.length_unique - shared
            keep &= shared >= (high_resemblance_threshold - 0.02) * union
            return np.flatnonzero(keep).tolist()
        return self._top_ranked(keep=keep, shared=shared, query_length=len(qset), top=top)

    def _top_ranked(self, *, keep, shared, query_length: int, top: int) -> list[int]:
        """Drop rules that cannot rank in the `top * 10` ScanCode's first pass keeps.

        ScanCode ranks by (resemblant?, containment, resemblance squared,
        matched length / 20), each rounded to 0.1, then the unrounded values,
        then rid. We bound each rounded value within one 0.1 step either way
        (numpy and Python may round a tie differently), call T the
        (top * 10)-th best lower bound among rules that surely pass the
        minimum-containment test, and keep every rule whose upper bound
        reaches T: a dropped rule ranks below at least top * 10 others.
        """
        import numpy as np

        limit = top * 10
        rids = np.flatnonzero(keep)
        if len(rids) <= limit:
            return rids.tolist()
        matched = shared[rids].astype(np.float64)
        length = self.length_unique[rids].astype(np.float64)
        resemblance = matched / (query_length + length - matched)
        containment = matched / length
        tenths = [
            np.rint(resemblance * 10),  # is_highly_resemblant: rounded resemblance >= 0.8
            np.rint(containment * 10),
            np.rint(resemblance**2 * 10),
            np.rint(matched / 20 * 10),
        ]
        low = [t - 1 for t in tenths]
        high = [t + 1 for t in tenths]
        low[0] = (low[0] >= 8).astype(np.float64)
        high[0] = (high[0] >= 8).astype(np.float64)

        def packed(parts):
            # Lexicographic order as one int64: each part is a small integer
            # (tenths; matched length / 2 stays far below 2**14 - 2), shifted
            # to be >= 0 and given 14 bits.
            value = np.zeros(len(rids), dtype=np.int64)
            for part in parts:
                value = (value << 14) + np.clip(part + 1, 0, (1 << 14) - 1).astype(np.int64)
            return value

        minimum = self.minimum_containment[rids]
        surely_kept = (minimum == 0) | (containment >= minimum + 1e-9)
        surely_dropped = (minimum > 0) & (containment < minimum - 1e-9)
        lows = packed(low)[surely_kept]
        if len(lows) < limit:
            return rids[~surely_dropped].tolist()
        threshold = np.partition(lows, len(lows) - limit)[len(lows) - limit]
        return rids[(packed(high) >= threshold) & ~surely_dropped].tolist()


class _NarrowedIndex:
    """The four attributes `compute_candidates` reads, restricted to some rules.

    Rules keep their relative order, so ScanCode's rid tie-breaks rank them
    the same; `_compute_candidates_fast` maps positions back to rids.
    """

    __slots__ = ("len_legalese", "rules_by_rid", "sets_by_rid", "msets_by_rid")

    def __init__(self, *, index, rids: list[int]):
        self.len_legalese = index.len_legalese
        self.rules_by_rid = [index.rules_by_rid[rid] for rid in rids]
        self.sets_by_rid = [index.sets_by_rid[rid] for rid in rids]
        # Read for the top * 10 ranked rules only (compute_candidates' second step): with the
        # multisets made on access (`_RuleTable`), making every survivor's was about a tenth
        # of a full match's time.
        self.msets_by_rid = (_Positions(table=index.msets_by_rid, rids=rids) if LEAN_ANALYSIS
                             else [index.msets_by_rid[rid] for rid in rids])


class _Positions:
    """`table[rids[position]]` for `[position]`: a narrowed view of a per-rule table, read lazily."""

    __slots__ = ("table", "rids")

    def __init__(self, *, table, rids: list[int]):
        self.table, self.rids = table, rids

    def __len__(self) -> int:
        return len(self.rids)

    def __getitem__(self, position: int):
        return self.table[self.rids[position]]


_ORIGINAL_COMPUTE_CANDIDATES = None
_FILTER: "CandidateFilter | None" = None


def _compute_candidates_fast(query_run, idx, matchable_rids, top=50, high_resemblance=False,
                             high_resemblance_threshold=0.8, _use_bigrams=False):
    """ScanCode's compute_candidates, with the rule loop pre-narrowed when enabled on this thread."""
    global _FILTER
    original = _ORIGINAL_COMPUTE_CANDIDATES
    if not getattr(_FAST, "enabled", False) or _use_bigrams:
        return original(query_run, idx, matchable_rids, top=top, high_resemblance=high_resemblance,
                        high_resemblance_threshold=high_resemblance_threshold, _use_bigrams=_use_bigrams)
    from licensedcode.match_set import build_set_and_mset

    if _FILTER is None or _FILTER.index is not idx:
        with _LOCK:
            if _FILTER is None or _FILTER.index is not idx:
                _FILTER = CandidateFilter(index=idx)
    qset, _ = build_set_and_mset(query_run.matchable_tokens(), _use_bigrams=False)
    rids = _FILTER.survivors(
        qset=qset, matchable_rids=matchable_rids, high_resemblance=high_resemblance,
        high_resemblance_threshold=high_resemblance_threshold, top=top,
    )
    if not rids:
        return []
    narrowed = _NarrowedIndex(index=idx, rids=rids)
    candidates = original(query_run, narrowed, range(len(rids)), top=top, high_resemblance=high_resemblance,
                          high_resemblance_threshold=high_resemblance_threshold, _use_bigrams=_use_bigrams)
    return [(scores, rids[position], rule, high) for scores, position, rule, high in candidates]


def fast_candidates_install() -> None:
    """Route ScanCode's candidate selection through `_compute_candidates_fast` (idempotent).

    Off by default on every thread; `fast_candidates_enabled()` turns it on
    for the calls made inside it.
    """
    global _ORIGINAL_COMPUTE_CANDIDATES
    from licensedcode import match_set

    with _LOCK:
        if _ORIGINAL_COMPUTE_CANDIDATES is None:
            _ORIGINAL_COMPUTE_CANDIDATES = match_set.compute_candidates
            match_set.compute_candidates = _compute_candidates_fast


class fast_candidates_enabled:
    """Context manager: ScanCode calls made inside it on this thread use the narrowed rule loop."""

    def __enter__(self):
        fast_candidates_install()
        self._previous = getattr(_FAST, "enabled", False)
        _FAST.enabled = True
        return self

    def __exit__(self, *exc):
        _FAST.enabled = self._previous


class ExactMatchFilter:
    """Can ScanCode's exact pass match anything in a text with these words?

    The exact pass finds a rule only as a contiguous run of the rule's token
    ids in the query (whole-file hash, Aho-Corasick), or from an
    SPDX-License-Identifier line, which needs "spdx license identifier" (or
    "licenses nuget org") as its first tokens. So a text whose known words do
    not include every token of at least one rule, nor one of those two
    triples, cannot get an exact match: a necessary condition, checked on
    word sets, that can only let a file through too often, never drop one
    that would match. Checked in two steps: each rule's rarest token
    ("anchor"; rarest across the rules) must be present, then one sparse
    product counts, per rule, how many of its unique tokens the text holds.
    """

    def __init__(self, *, index):
        import numpy as np
        from scipy import sparse

        from licensedcode.stopwords import STOPWORDS

        self.dictionary = index.dictionary
        # The query drops stopwords and unknown words (licensedcode/query.py).
        self.known_words = {word: tid for word, tid in index.dictionary.items() if word not in STOPWORDS}
        self.automaton = index.rules_automaton
        tokens_count = len(index.tokens_by_tid)
        rows = []
        for tids in index.tids_by_rid:
            array = np.frombuffer(tids.tobytes(), dtype=np.dtype(tids.typecode)).astype(np.int64) if tids is not None and len(tids) else np.zeros(0, np.int64)
            rows.append(np.unique(array))
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        columns = np.concatenate(rows)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        self.rules_by_tokens = sparse.csr_matrix(
            (np.ones(len(columns), dtype=np.int32), columns, indptr), shape=(len(rows), tokens_count)
        ).tocsc()
        self.unique_lengths = lengths
        frequency = np.bincount(columns, minlength=tokens_count)
        self.anchors = frozenset(
            int(row[np.argmin(frequency[row])]) for row in rows if len(row)
        )
        get = self.dictionary.get
        self.spdx_triples = [
            {get(w) for w in triple} for triple in (("spdx", "license", "identifier"), ("licenses", "nuget", "org"))
            if all(get(w) is not None for w in triple)
        ]
        self.has_empty_rule = bool((lengths == 0).any())

    def possible_in_order(self, *, readings: list[list[str]]) -> bool:
        """Like `possible`, but runs ScanCode's own rule automaton over each reading's tokens.

        For a plain-text file, ScanCode's query tokens are exactly the known,
        non-stopword words in order (licensedcode/query.py), so when the
        query is one of `readings`, an Aho-Corasick hit in the query is a hit
        here; no hit in any reading and no SPDX line means an empty exact pass.
        """
        if self.has_empty_rule:
            return True
        get = self.known_words.get
        known = partial(is_not, None)
        for words in readings:
            tids = tuple(filter(known, map(get, words)))
            held = set(tids)
            if any(triple <= held for triple in self.spdx_triples):
                return True
            for _ in self.automaton.iter(tids):
                return True
        return False

    def token_ids(self, *, words) -> set[int]:
        """Token ids of the words ScanCode's dictionary knows."""
        get = self.dictionary.get
        return {tid for tid in map(get, words) if tid is not None}

    def possible(self, *, tids: set[int]) -> bool:
        """False only when no rule and no SPDX line can match exactly (see the class docstring)."""
        import numpy as np

        if self.has_empty_rule or any(triple <= tids for triple in self.spdx_triples):
            return True
        if self.anchors.isdisjoint(tids):
            return False
        columns = np.sort(np.fromiter(tids, dtype=np.int64, count=len(tids)))
        held = np.asarray(self.rules_by_tokens[:, columns].sum(axis=1)).ravel()
        return bool((held >= self.unique_lengths).any())


_EXACT_FILTER: "ExactMatchFilter | None" = None


# -- matched text tokenised only as far as it is read ------------------------
#
# ScanCode's detection analysis (false-positive checks, detection
# identifiers) asks for each match's matched text, and
# `licensedcode.match.tokenize_matched_text` builds it by re-tokenising the
# WHOLE file (one attrs Token per word, in Python) and keeping the last file's
# list; `reportable_tokens` then reads tokens only up to the match's last line
# and stops. On the ScanCode-bound files of bench/licenses.py that
# re-tokenising was about 8 of 26 CPU seconds (617 files, 1.7 M tokens; Dec
# 2026), mostly for 1-20 line licence headers at the top of long source files.
# `_LazyTokens` wraps ScanCode's own generator (same tokens, same order, same
# line numbers and positions) and pulls from it only as far as some reader
# has gone, keeping what it pulled for the next match of the same file.
# The generator holds the file open, so a file must not be rewritten in place
# while its tokens may still be read: detect.py unlinks the scratch file
# before writing a new one at the same place. Like the fast candidates, it is
# on only inside `fast_candidates_enabled`, so the reference ScanCode run in
# bench/licenses.py keeps ScanCode's own function.


# Tokens taken from the generator at a time (a few lines of text).
_LAZY_TOKENS_STEP = 64


class _LazyTokens:
    """A memoised, lazily filled token list over ScanCode's `_tokenize_matched_text` generator."""

    __slots__ = ("_generator", "_tokens", "_finished")

    def __init__(self, generator):
        self._generator = generator
        self._tokens: list = []
        self._finished = False

    def _pull(self, count: int = 1) -> bool:
        """Take up to `count` more tokens from the generator; False once it is spent."""
        if self._finished:
            return False
        tokens = self._tokens
        before = len(tokens)
        tokens.extend(islice(self._generator, count))
        if len(tokens) - before < count:
            self._finished = True
            self._generator = None
        return len(tokens) > before

    def __iter__(self):
        tokens = self._tokens
        if self._finished:
            return iter(tokens)
        # What is already there is read at list speed (C iterators); the
        # generator below only runs once a reader goes past it.
        count = len(tokens)
        return chain(islice(tokens, 0, count), self._iterate(position=count))

    def _iterate(self, *, position: int):
        tokens = self._tokens
        while True:
            count = len(tokens)
            if position < count:
                # Readers usually stop early (`reportable_tokens` breaks after
                # the match's last line); islice walks the list without a copy.
                yield from islice(tokens, position, count)
                position = count
            # Steps double (64, 128, 256, ... tokens): a reader that goes
            # to the end of a long licence text gets there in a few pulls.
            elif not self._pull(max(_LAZY_TOKENS_STEP, count)):
                return

    def __bool__(self) -> bool:
        # ScanCode's cache test is `if cached:` on a list: empty means "tokenise again".
        return bool(self._tokens) or self._pull()

    def __len__(self) -> int:
        while self._pull():
            pass
        return len(self._tokens)


_ORIGINAL_TOKENIZE_MATCHED_TEXT = None
_LAZY_TOKENS_CACHE: dict = {}


# False sends every call to ScanCode's own function (for A/B timing in bench/licenses.py --ab).
LAZY_MATCHED_TEXT = True


def _tokenize_matched_text_lazy(location, query_string, dictionary, start_line=1, _cache=None):
    """`licensedcode.match.tokenize_matched_text`, tokenising only as far as read (when enabled)."""
    if not (LAZY_MATCHED_TEXT and getattr(_FAST, "enabled", False)):
        if _cache is None:
            return _ORIGINAL_TOKENIZE_MATCHED_TEXT(location, query_string, dictionary, start_line=start_line)
        return _ORIGINAL_TOKENIZE_MATCHED_TEXT(location, query_string, dictionary, start_line=start_line,
                                               _cache=_cache)
    from licensedcode.match import _tokenize_matched_text

    cache = _LAZY_TOKENS_CACHE if _cache is None else _cache
    key = location, query_string, start_line
    cached = cache.get(key)
    if cached:
        return cached
    # Like ScanCode: only the last call is kept.
    cache.clear()
    cache[key] = result = _LazyTokens(
        _tokenize_matched_text(location=location, query_string=query_string, dictionary=dictionary,
                               start_line=start_line)
    )
    return result


def matched_text_tokens_forget() -> None:
    """Drop the matched-text tokens ScanCode (and `_tokenize_matched_text_lazy`) keep for the last file read."""
    _LAZY_TOKENS_CACHE.clear()
    if _ORIGINAL_TOKENIZE_MATCHED_TEXT is not None:
        defaults = _ORIGINAL_TOKENIZE_MATCHED_TEXT.__defaults__ or ()
        if defaults and isinstance(defaults[-1], dict):
            defaults[-1].clear()


def lazy_matched_text_install() -> None:
    """Route `licensedcode.match.tokenize_matched_text` through `_tokenize_matched_text_lazy` (idempotent)."""
    global _ORIGINAL_TOKENIZE_MATCHED_TEXT
    from licensedcode import match

    with _LOCK:
        if _ORIGINAL_TOKENIZE_MATCHED_TEXT is None:
            _ORIGINAL_TOKENIZE_MATCHED_TEXT = match.tokenize_matched_text
            match.tokenize_matched_text = _tokenize_matched_text_lazy


def exact_match_filter_get() -> ExactMatchFilter:
    """The process-wide ExactMatchFilter (built with the index; here if it was not)."""
    global _EXACT_FILTER
    if _EXACT_FILTER is None:
        state = scancode_state_get()
        with _LOCK:
            if _EXACT_FILTER is None:
                _EXACT_FILTER = ExactMatchFilter(index=state.index)
    return _EXACT_FILTER


# -- detection analysis without the work whose answer is never read -----------
#
# After matching, ScanCode's `detect_licenses` groups the matches into
# LicenseDetections (`LicenseDetection.from_matches`), and two steps of that
# read every match's matched text, which re-tokenises the file up to the
# match (`_LazyTokens` above bounds, but does not remove, that work):
# - `is_false_positive` computes "does every match's text hold a copyright
#   word?" and "is every match's rule of relevance 100?", and returns False
#   if either holds. The relevance test needs no text, and answers for most
#   detections (most rules have relevance 100), so `_is_false_positive_fast`
#   asks it first: the same answer, the text read only when it decides.
# - `from_matches` sets each detection's `identifier`, a UUID of every match's
#   tokenised matched text, and its SPDX expression. The portal reads neither
#   (detect.py builds its SPDX expression itself, once per file), so
#   `detections_find` builds the detections with ScanCode's own analysis and
#   expression steps and leaves those two unset.
# On the 3,000-file sample of bench/submission_e2e.py these two were about a
# quarter of the exact pass (py-spy, Dec 2026). The reordered test is patched
# into ScanCode but on only inside `fast_candidates_enabled`, like the rest of
# this module's fast paths; `detections_find` is ours, called by detect.py. So
# a plain ScanCode run in the same process (bench/licenses.py's reference)
# keeps ScanCode's own functions; tests compare the two on real files.

_ORIGINAL_IS_FALSE_POSITIVE = None

# False gives ScanCode's own analysis (`detect_licenses`, its `is_false_positive`) and every
# survivor's multiset made up front, for A/B timing in bench/licence_analysis.py.
LEAN_ANALYSIS = True


def _is_false_positive_fast(license_matches, package_license=False):
    """`licensedcode.detection.is_false_positive`, asking the relevance test before the matched text's."""
    if not (LEAN_ANALYSIS and getattr(_FAST, "enabled", False)) or package_license:
        return _ORIGINAL_IS_FALSE_POSITIVE(license_matches=license_matches, package_license=package_license)
    if all(license_match.rule.relevance == 100 for license_match in license_matches):
        return False
    return _ORIGINAL_IS_FALSE_POSITIVE(license_matches=license_matches, package_license=package_license)


def false_positive_fast_install() -> None:
    """Route `licensedcode.detection.is_false_positive` through `_is_false_positive_fast` (idempotent)."""
    global _ORIGINAL_IS_FALSE_POSITIVE
    if _ORIGINAL_IS_FALSE_POSITIVE is not None:  # asked once per file by detections_find: no lock then
        return
    from licensedcode import detection

    with _LOCK:
        if _ORIGINAL_IS_FALSE_POSITIVE is None:
            _ORIGINAL_IS_FALSE_POSITIVE = detection.is_false_positive
            detection.is_false_positive = _is_false_positive_fast


def detections_find(*, index, location: str, approximate: bool, deadline: float) -> list:
    """ScanCode's `detect_licenses(index=..., location=..., approximate=..., deadline=...)`
    with the same detections, expressions, logs and matches, but without each detection's
    `identifier` and `license_expression_spdx` (None here; see above). Call it inside
    `fast_candidates_enabled` for the faster false-positive test."""
    from licensedcode.cache import get_licensing
    from licensedcode.detection import (
        LicenseDetection, analyze_detection, get_detected_license_expression, group_matches,
        process_detections,
    )

    if not LEAN_ANALYSIS:
        from licensedcode.detection import detect_licenses

        return list(detect_licenses(index=index, location=location, approximate=approximate, deadline=deadline))
    false_positive_fast_install()
    matches = index.match(location=location, min_score=0, deadline=deadline, as_expression=False,
                          unknown_licenses=False, approximate=approximate)
    if not matches:
        return []
    detections = []
    for group in group_matches(license_matches=matches):
        # LicenseDetection.from_matches(matches=group) step for step, less the two fields.
        if not group:
            detections.append(None)
            continue
        analysis = analyze_detection(license_matches=group, package_license=False)
        detection_log, expression = get_detected_license_expression(
            analysis=analysis, license_matches=group, post_scan=False,
        )
        if expression is None:
            detections.append(LicenseDetection(matches=group, detection_log=detection_log))
        else:
            detections.append(LicenseDetection(matches=group, license_expression=str(expression),
                                               detection_log=detection_log))
    return list(process_detections(detections=detections, licensing=get_licensing()))
