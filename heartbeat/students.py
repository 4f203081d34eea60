"""Who is active, and each active student's state: read as sets, never row by row.

Per batch of students this issues four indexed queries (students, users, profiles,
latest biometrics), whatever the batch size; the PHP job issued about 23 per student
and read the state through a view that could not use an index.

Rows are matched to students as the database matches them: the plugin's tables use
case-insensitive, PAD SPACE collations, so ``WHERE student_id IN ('k0001')`` returns
the rows of ``'K0001 '`` too, and those rows belong to that student here as well
(:func:`id_key`). Values real sites hold that are not what the columns promise (zero
dates under a lax sql_mode, text in a number column, NaN) count as missing: they never
stop a run, and at worst one student is evaluated without them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional

from heartbeat.db import Tables, stream

_NUMERIC_ID = re.compile(r"[0-9]{1,18}")

# Defaults for a known student without profile or biometrics rows (spec section 3.2),
# the same as the columns' defaults in the ALT42 schema.
PROFILE_DEFAULTS: dict[str, Any] = {
    "emotion_state": "neutral",
    "immersion_level": 5.0,
    "engagement_score": 0.0,
    "math_confidence": 5.0,
    "updated_at": None,
}
BIOMETRICS_DEFAULTS: dict[str, Any] = {"stress_level": 0.0, "concentration_level": 5.0}


def order_key(student_id: str) -> tuple[int, int, str]:
    """Numeric ids first in numeric order, then the others in text order."""
    if _NUMERIC_ID.fullmatch(student_id):
        return (0, int(student_id), student_id)
    return (1, 0, student_id)


def active_student_ids(
    conn: Any,
    tables: Tables,
    now: dt.datetime,
    window_hours: int,
    open_session_hours: int,
) -> list[str]:
    """Every active student (no cap), in a deterministic order.

    Active: a session that ended within the window, or an open one that started within
    ``open_session_hours`` (abandoned open sessions do not count forever). When no
    session qualifies, students with activity rows within the window.
    """
    params = _session_params(now, window_hours, open_session_hours)
    sql = (
        f"SELECT student_id FROM {tables.sessions} WHERE {OPEN_SESSION}"
        f" UNION SELECT student_id FROM {tables.sessions} WHERE {ENDED_SESSION}"
    )
    ids = {str(row[0]) for row in stream(conn, sql, params)}
    if not ids:
        sql = (
            f"SELECT DISTINCT student_id FROM {tables.activity}"
            " WHERE activity_date >= %s AND activity_date <= %s"
        )
        ids = {str(row[0]) for row in stream(conn, sql, params[1:])}
    return in_order(ids)


def in_order(ids: set[str]) -> list[str]:
    """``sorted(ids, key=order_key)`` without a key tuple per id (memory at 1M ids).

    Numeric ids are sorted as text, then stably by their number: ties in number ("7",
    "007") stay in text order, exactly as ``order_key`` orders them.
    """
    numeric = sorted(s for s in ids if _NUMERIC_ID.fullmatch(s))
    numeric.sort(key=int)
    numeric.extend(sorted(s for s in ids if not _NUMERIC_ID.fullmatch(s)))
    return numeric


# The two ways a learning session makes its student active (parameters from
# ``_session_params``): open and recently started, or ended within the window. A zero
# session_end ('0000-00-00 00:00:00', stored under a lax sql_mode) is no end: open.
OPEN_SESSION = "(session_end IS NULL OR YEAR(session_end) = 0) AND start_time >= %s"
ENDED_SESSION = "session_end >= %s AND session_end <= %s"


def _session_params(
    now: dt.datetime, window_hours: int, open_session_hours: int
) -> tuple[int, dt.datetime, dt.datetime]:
    """(open sessions' earliest start, window start, now) for the two conditions."""
    open_since = int((now - dt.timedelta(hours=open_session_hours)).timestamp())
    return open_since, _naive(now - dt.timedelta(hours=window_hours)), _naive(now)


def has_active_sessions(
    conn: Any, tables: Tables, now: dt.datetime, window_hours: int, open_session_hours: int
) -> bool:
    """Whether any session makes a student active now (for the status check)."""
    params = _session_params(now, window_hours, open_session_hours)
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT EXISTS(SELECT 1 FROM {tables.sessions} WHERE {OPEN_SESSION})"
            f" OR EXISTS(SELECT 1 FROM {tables.sessions} WHERE {ENDED_SESSION})",
            params,
        )
        row = cur.fetchone()
    return bool(row and row[0])


def _naive(moment: dt.datetime) -> dt.datetime:
    """UTC wall time without tzinfo: what PyMySQL sends for a '+00:00' session."""
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _marks(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _column_number(value: Any) -> Optional[float]:
    """A number column's value; anything that is not a finite number is missing."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _moment(value: Any) -> Optional[dt.datetime]:
    """A date column's value: PyMySQL returns a zero date as the string
    '0000-00-00 00:00:00', which is no moment at all."""
    return value if isinstance(value, dt.datetime) else None


def _iso(value: Optional[dt.datetime]) -> Optional[str]:
    return None if value is None else value.replace(tzinfo=dt.timezone.utc).isoformat()


IdKey = Callable[[str], str]


def id_key(collation: Optional[str]) -> IdKey:
    """The key under which the database holds two student ids for equal.

    MariaDB's collations (and MySQL's before the ``_0900_`` ones) are PAD SPACE:
    trailing spaces do not count; ``_ci`` ones ignore case and accents too
    (utf8mb4_unicode_ci: 'é' = 'e', 'ß' = 'ss'). ``_bin`` and ``_cs`` keep both.
    """
    name = (collation or "utf8mb4_unicode_ci").lower()
    pad = "nopad" not in name and "_0900_" not in name
    fold = name.endswith("_ci")

    def key(text: str) -> str:
        if pad:
            text = text.rstrip(" ")
        if not fold:
            return text
        if text.isascii():
            return text.lower()
        decomposed = unicodedata.normalize("NFKD", text)
        return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()

    return key


@dataclass(frozen=True)
class IdKeys:
    """How each table the state comes from compares student ids."""

    students: IdKey
    profiles: IdKey
    biometrics: IdKey


def id_keys(collations: Mapping[str, str], tables: Tables) -> IdKeys:
    """``id_key`` per table, from the ``student_id`` collations (``db.collations_of``)."""

    def of(table: str) -> IdKey:
        return id_key(collations.get(tables.bare(table)))

    return IdKeys(of(tables.students), of(tables.profiles), of(tables.biometrics))


def _user_id(student_id: str, users: set[int]) -> Optional[int]:
    """The Moodle user a numeric id names (' 1001 ' = 1001, as SQL compares them)."""
    digits = student_id.strip()
    if _NUMERIC_ID.fullmatch(digits) and int(digits) in users:
        return int(digits)
    return None


def load_states(
    conn: Any,
    tables: Tables,
    student_ids: Sequence[str],
    profile_columns: set[str],
    keys: IdKeys,
    sources: Optional[dict[str, dict[str, str]]] = None,
) -> dict[str, dict[str, Any]]:
    """The state of each student of a batch, keyed by student id (spec section 3.2).

    A student known neither to ``alt42_students`` nor (non-deleted) to ``user`` gets
    ``{student_id}`` only, so that no rule can match on invented defaults. ``sources``
    (``run --explain``) is filled with where each field of each state came from.
    """
    if not student_ids:
        return {}
    has_mbti_type = "mbti_type" in profile_columns
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT student_id, userid, grade, class, mbti FROM {tables.students}"
            f" WHERE student_id IN ({_marks(student_ids)})",
            list(student_ids),
        )
        students = {keys.students(str(row[0])): StudentRow._make(row) for row in cur.fetchall()}
        numeric = [int(s.strip()) for s in student_ids if _NUMERIC_ID.fullmatch(s.strip())]
        users: set[int] = set()
        if numeric:
            cur.execute(
                f"SELECT id FROM {tables.user} WHERE deleted = 0 AND id IN ({_marks(numeric)})",
                numeric,
            )
            users = {int(row[0]) for row in cur.fetchall()}

        user_of: dict[str, Optional[int]] = {}
        for sid in student_ids:
            row = students.get(keys.students(sid))
            user = _user_id(sid, users)
            if row is not None:
                user_of[sid] = _user_number(row.userid) or user
            elif user is not None:
                user_of[sid] = user
        user_ids = sorted({uid for uid in user_of.values() if uid is not None})

        known = list(user_of)
        profiles = _latest_profiles(
            cur, tables, known, user_ids, has_mbti_type, "id" in profile_columns, keys.profiles
        )
        biometrics = _latest_biometrics(cur, tables, known, keys.biometrics)

    states: dict[str, dict[str, Any]] = {}
    for sid in student_ids:
        if sid not in user_of:
            states[sid] = {"student_id": sid}
            if sources is not None:
                sources[sid] = {
                    "student_id": UNKNOWN_STUDENT.format(
                        tables.bare(tables.students), tables.bare(tables.user)
                    )
                }
            continue
        student = students.get(keys.students(sid))
        uid = user_of[sid]
        by_student = profiles.get(("s", keys.profiles(sid)))
        profile = _later(by_student, profiles.get(("u", uid)) if uid else None)
        state: dict[str, Any] = {"student_id": sid}
        state.update(profile.values if profile else PROFILE_DEFAULTS)
        latest = biometrics.get(keys.biometrics(sid))
        state.update(latest.values if latest else BIOMETRICS_DEFAULTS)
        if sources is not None:
            by = f"student_id {sid}" if profile is by_student else f"user_id {uid}"
            sources[sid] = _sources(tables, sid, student, profile, by, latest, has_mbti_type)
        mbti = student.mbti if student else None
        state["mbti"] = mbti
        state["grade"] = student.grade if student else None
        state["class"] = student.class_ if student else None
        profile_mbti = profile.values.get("mbti_type") if profile else None
        state["mbti_type"] = profile_mbti if has_mbti_type and profile_mbti else mbti
        states[sid] = state
    return states


UNKNOWN_STUDENT = (
    "the student id only: no {} row and no (non-deleted) {} row, so no defaults either"
)


def _sources(
    tables: Tables,
    sid: str,
    student: Optional[StudentRow],
    profile: Optional[ProfileRow],
    by: str,
    latest: Optional[BiometricsRow],
    has_mbti_type: bool,
) -> dict[str, str]:
    """Where each field of one student's state came from (for ``run --explain``);
    ``by`` says how the profile row was found (``student_id 1001``, ``user_id 7``)."""
    profiles, biometrics = tables.bare(tables.profiles), tables.bare(tables.biometrics)
    students = tables.bare(tables.students)
    found = {"student_id": "the active students' list"}
    if profile:
        row_id = profile.key.row_id
        row = f"{profiles} row id {row_id}" if row_id else f"a {profiles} row"
        where = f"{row}, the latest by updated_at of those with {by}"
    else:
        where = f"default: no {profiles} row"
    found.update(dict.fromkeys(PROFILE_DEFAULTS, where))
    if latest:
        where = f"{biometrics} row id {latest.row_id}, the latest by created_at"
    else:
        where = f"default: no {biometrics} row"
    found.update(dict.fromkeys(BIOMETRICS_DEFAULTS, where))
    own = f"{students} row of student_id {sid}" if student else f"none: no {students} row"
    found.update(dict.fromkeys(("mbti", "grade", "class"), own))
    if has_mbti_type and profile and profile.values.get("mbti_type"):
        found["mbti_type"] = found["emotion_state"]
    else:
        found["mbti_type"] = f"the mbti of the {students} row (no mbti_type in the profile)"
    return found


def _user_number(value: Any) -> Optional[int]:
    """``alt42_students.userid``: a Moodle user id, or missing (NULL, 0, not a number)."""
    try:
        return int(value) or None
    except (TypeError, ValueError):
        return None


class StudentRow(NamedTuple):
    """An ``alt42_students`` row, in the order ``load_states`` selects it."""

    student_id: Any
    userid: Any
    grade: Any
    class_: Any
    mbti: Any


class ProfileKey(NamedTuple):
    """How profile rows are ordered, the latest last: a readable ``updated_at`` first,
    then the newer one, then the higher row id (0 where the table has no id)."""

    dated: bool
    updated: dt.datetime
    row_id: int


class ProfileRow(NamedTuple):
    key: ProfileKey
    values: dict[str, Any]


class BiometricsRow(NamedTuple):
    row_id: Any
    values: dict[str, Any]


def _later(a: Optional[ProfileRow], b: Optional[ProfileRow]) -> Optional[ProfileRow]:
    if a is None:
        return b
    if b is None:
        return a
    return a if a.key >= b.key else b


def _latest_profiles(
    cur: Any,
    tables: Tables,
    student_ids: Sequence[str],
    user_ids: Sequence[int],
    has_mbti_type: bool,
    has_id: bool,
    key_of: IdKey,
) -> dict[tuple[str, Any], ProfileRow]:
    """Latest profile row per student id (its ``key_of``) and per user id (latest
    ``updated_at``, then id); a zero or unreadable ``updated_at`` counts as none.

    The server picks the latest row of each (a window per owner): the job receives one
    row per student whatever the history, so its memory stays flat (fetching every row
    and picking in Python took 628 MB for one student with a million rows)."""
    if not student_ids:
        return {}
    columns = "user_id, student_id, emotion_state, immersion_level, engagement_score, "
    columns += "math_confidence, updated_at, "
    columns += ("mbti_type" if has_mbti_type else "NULL") + ", " + ("id" if has_id else "0")
    # valid dates first, newest first; then the highest id (the PHP job took any row)
    valid = "(updated_at IS NOT NULL AND updated_at > 0)"
    order = f"{valid} DESC, CASE WHEN {valid} THEN updated_at END DESC"
    order += ", id DESC" if has_id else ""
    # One statement (the batch's statement count stays as it was): the latest row per
    # student id, and per user id.
    parts, params = [], []
    for kind, column, values in (("s", "student_id", student_ids), ("u", "user_id", user_ids)):
        if values:
            parts.append(
                f"SELECT '{kind}', {columns} FROM (SELECT {columns}, ROW_NUMBER() OVER"
                f" (PARTITION BY {column} ORDER BY {order}) AS rn FROM {tables.profiles}"
                f" WHERE {column} IN ({_marks(values)})) latest_{kind} WHERE rn = 1"
            )
            params += list(values)
    cur.execute(" UNION ALL ".join(parts), params)
    winners: dict[tuple[str, Any], ProfileRow] = {}
    for (kind, user_id, student_id, emotion, immersion, engagement, confidence, updated_at,
         mbti_type, row_id) in cur.fetchall():  # fmt: skip
        owner = key_of(str(student_id)) if kind == "s" else _user_number(user_id)
        if owner is None:
            continue
        updated = _moment(updated_at)
        key = ProfileKey(updated is not None, updated or dt.datetime.min, _user_number(row_id) or 0)
        winners[(kind, owner)] = ProfileRow(
            key,
            {
                "emotion_state": emotion,
                "immersion_level": _column_number(immersion),
                "engagement_score": _column_number(engagement),
                "math_confidence": _column_number(confidence),
                "updated_at": _iso(updated),
                "mbti_type": mbti_type,
            },
        )
    return winners


def _latest_biometrics(
    cur: Any, tables: Tables, student_ids: Sequence[str], key_of: IdKey
) -> dict[str, BiometricsRow]:
    """The latest biometrics row per student (its ``key_of``; latest ``created_at``, then
    highest id): (its id, its values)."""
    if not student_ids:
        return {}
    cur.execute(
        "SELECT student_id, stress_level, concentration_level, id FROM ("
        " SELECT student_id, stress_level, concentration_level, id,"
        " ROW_NUMBER() OVER (PARTITION BY student_id ORDER BY created_at DESC, id DESC) AS rn"
        f" FROM {tables.biometrics} WHERE student_id IN ({_marks(student_ids)})"
        ") latest WHERE rn = 1",
        list(student_ids),
    )
    return {
        key_of(str(student_id)): BiometricsRow(
            row_id,
            {"stress_level": _column_number(stress), "concentration_level": _column_number(focus)},
        )
        for student_id, stress, focus, row_id in cur.fetchall()
    }
