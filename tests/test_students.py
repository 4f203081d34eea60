"""Active students and their state, against the real MariaDB (spec section 3.1-3.2)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from heartbeat import db
from heartbeat.students import active_student_ids, id_keys, load_states
from tests.conftest import Site

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def ago(**delta: float) -> dt.datetime:
    return (NOW - dt.timedelta(**delta)).replace(tzinfo=None)


def add_session(site: Site, sid: str, started: dt.datetime, ended: dt.datetime | None) -> None:
    site.execute(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time, end_time, session_end)"
        " VALUES (%s, %s, %s, %s)",
        (
            sid,
            int(started.replace(tzinfo=dt.timezone.utc).timestamp()),
            None if ended is None else int(ended.replace(tzinfo=dt.timezone.utc).timestamp()),
            ended,
        ),
    )


def active(site: Site, window: int = 24, open_hours: int = 24) -> list[str]:
    conn = db.connect(site.config().database, 30)
    try:
        return active_student_ids(conn, db.Tables(site.prefix), NOW, window, open_hours)
    finally:
        conn.close()


def states(site: Site, ids: list[str], mbti_type: bool = True) -> dict[str, dict[str, Any]]:
    conn = db.connect(site.config().database, 30)
    try:
        tables = db.Tables(site.prefix)
        columns = {"id", "mbti_type"} if mbti_type else {"id"}
        keys = id_keys(db.collations_of(conn, tables), tables)
        return load_states(conn, tables, ids, columns, keys)
    finally:
        conn.close()


def test_window_and_open_session_bounds(site: Site) -> None:
    add_session(site, "open-recent", ago(hours=1), None)
    add_session(site, "open-abandoned", ago(hours=25), None)
    add_session(site, "ended-recent", ago(hours=3), ago(hours=2))
    add_session(site, "ended-old", ago(hours=30), ago(hours=25))
    add_session(site, "long-session", ago(days=3), ago(minutes=30))
    assert active(site) == ["ended-recent", "long-session", "open-recent"]
    assert active(site, open_hours=48) == [
        "ended-recent",
        "long-session",
        "open-abandoned",
        "open-recent",
    ]
    assert active(site, window=1) == ["long-session", "open-recent"]


def test_activity_fallback_only_when_no_session_qualifies(site: Site) -> None:
    site.executemany(
        "INSERT INTO mdl_alt42_student_activity (student_id, activity_date) VALUES (%s, %s)",
        [("act-1", ago(hours=2)), ("act-2", ago(hours=30)), ("act-1", ago(hours=1))],
    )
    add_session(site, "old", ago(hours=30), ago(hours=29))
    assert active(site) == ["act-1"]
    add_session(site, "now", ago(hours=1), None)
    assert active(site) == ["now"]


def test_no_cap_and_numeric_order(site: Site) -> None:
    ids = [str(n) for n in range(1, 1201)] + ["abc", "0099x", "guest-1"]
    site.executemany(
        "INSERT INTO mdl_alt42_learning_sessions (student_id, start_time) VALUES (%s, %s)",
        [(sid, int(NOW.timestamp()) - 60) for sid in ids],
    )
    found = active(site)
    assert len(found) == 1203  # the PHP job stopped at 1000, in text order
    assert found[:3] == ["1", "2", "3"]
    assert found[999:1001] == ["1000", "1001"]
    assert {"825", "999"} <= set(found)
    assert found[-3:] == ["0099x", "abc", "guest-1"]


def seed_people(site: Site) -> None:
    site.executemany(
        "INSERT INTO mdl_user (id, username, deleted) VALUES (%s, %s, %s)",
        [(1, "u1", 0), (2, "u2", 0), (3, "gone", 1), (4, "gone-known", 1), (5, "u5", 0)],
    )
    site.executemany(
        "INSERT INTO mdl_alt42_students (student_id, userid, grade, class, mbti)"
        " VALUES (%s, %s, %s, %s, %s)",
        [("1", 1, 10, "A", "INFP"), ("4", 4, 9, "C", "ESTJ"), ("S-5", 5, 11, "B", "ENTP")],
    )


def test_latest_profile_and_biometrics_win(site: Site) -> None:
    seed_people(site)
    site.executemany(
        "INSERT INTO mdl_alt42_student_profiles (user_id, student_id, mbti_type, emotion_state,"
        " immersion_level, engagement_score, math_confidence, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        [
            (1, "1", "ISTJ", "분노", 1, 0.1, 1, ago(days=2)),
            (1, "1", None, "불안", 2.5, 0.35, 3.5, ago(hours=1)),
            (1, "1", "ENFJ", "old", 9, 0.9, 9, None),
        ],
    )
    site.executemany(
        "INSERT INTO mdl_alt42_student_biometrics (id, student_id, stress_level,"
        " concentration_level, created_at) VALUES (%s, %s, %s, %s, %s)",
        [
            (1, "1", 2, 8, ago(hours=3)),
            (2, "1", 9, 4, ago(minutes=5)),
            (3, "1", 1, 1, ago(days=1)),
        ],
    )
    state = states(site, ["1"])["1"]
    assert state["emotion_state"] == "불안"
    assert state["engagement_score"] == pytest.approx(0.35)
    assert state["immersion_level"] == pytest.approx(2.5)
    assert state["math_confidence"] == pytest.approx(3.5)
    assert state["stress_level"] == pytest.approx(9)
    assert state["concentration_level"] == pytest.approx(4)
    assert (state["grade"], state["class"], state["mbti"]) == (10, "A", "INFP")
    assert state["mbti_type"] == "INFP"  # the latest profile has none: the student's mbti
    assert state["updated_at"].startswith(ago(hours=1).date().isoformat())


def test_biometrics_tie_on_created_at_takes_highest_id(site: Site) -> None:
    seed_people(site)
    when = ago(minutes=1)
    site.executemany(
        "INSERT INTO mdl_alt42_student_biometrics (id, student_id, stress_level,"
        " concentration_level, created_at) VALUES (%s, %s, %s, %s, %s)",
        [(10, "1", 3, 3, when), (11, "1", 7, 7, when)],
    )
    assert states(site, ["1"])["1"]["stress_level"] == pytest.approx(7)


def test_defaults_unknown_and_deleted_students(site: Site) -> None:
    seed_people(site)
    found = states(site, ["1", "2", "3", "4", "999", "guest"])
    assert found["2"] == {
        "student_id": "2",
        "emotion_state": "neutral",
        "immersion_level": 5.0,
        "engagement_score": 0.0,
        "math_confidence": 5.0,
        "updated_at": None,
        "stress_level": 0.0,
        "concentration_level": 5.0,
        "mbti": None,
        "grade": None,
        "class": None,
        "mbti_type": None,
    }
    assert found["3"] == {"student_id": "3"}  # deleted user, not an ALT42 student
    assert found["999"] == {"student_id": "999"}
    assert found["guest"] == {"student_id": "guest"}
    assert found["4"]["mbti"] == "ESTJ"  # deleted in Moodle but an ALT42 student
    assert found["4"]["emotion_state"] == "neutral"


def test_profile_found_through_students_userid(site: Site) -> None:
    seed_people(site)
    site.execute(
        "INSERT INTO mdl_alt42_student_profiles (user_id, student_id, mbti_type, emotion_state,"
        " engagement_score, updated_at) VALUES (5, NULL, 'INTP', '좌절', 0.2, %s)",
        (ago(minutes=3),),
    )
    state = states(site, ["S-5"])["S-5"]
    assert state["emotion_state"] == "좌절"
    assert state["mbti_type"] == "INTP"


def test_profiles_table_without_mbti_type_column(site: Site) -> None:
    seed_people(site)
    site.execute("ALTER TABLE mdl_alt42_student_profiles DROP COLUMN mbti_type")
    site.execute(
        "INSERT INTO mdl_alt42_student_profiles (user_id, student_id, emotion_state, updated_at)"
        " VALUES (1, '1', '피로', %s)",
        (ago(minutes=1),),
    )
    state = states(site, ["1"], mbti_type=False)["1"]
    assert state["mbti_type"] == "INFP"
    assert state["emotion_state"] == "피로"
