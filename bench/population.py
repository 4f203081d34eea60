"""A realistic ALT42 population of N *active* students, loaded in bulk.

Rows are written as tab-separated files and loaded with ``LOAD DATA LOCAL INFILE``
(one statement per table), so 100,000 students (about a million rows over six tables)
load in seconds.

Who is in it (student ids are numbers: ``1..N`` are active, the rest are not):

* every active student has one session that makes them active (ended within the last
  20 hours, or open and started within the last 12 hours) and 0-2 old ended sessions;
* ``N // 4`` inactive students have only sessions outside the window: ended 2-10 days
  ago, or open but started 2-5 days ago (abandoned: must not count);
* kinds of students, by ``id % 20``: 0 unknown to Moodle and ALT42 (state is the id
  only), 1 a deleted Moodle user without an ALT42 row (id only), 2 a Moodle user without
  an ALT42 row (profiles keyed by user id), 3 an ALT42 row with ``userid`` NULL joined
  through ``mdl_user.id``, 4 known but without profile or biometrics rows (defaults),
  all others known both ways;
* a known student has three profile rows (some keyed by student id, some by user id
  only, the latest decides) and four biometrics rows (the latest decides);
* the latest rows follow one of eleven archetypes chosen so that every shipped rule that
  can match on the state matches for some students, and no rule at all for others.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# emotion, engagement, immersion, math_confidence, stress, concentration, mbti_type
# (None = random within a range that cannot match). Rules noted are the ones the
# archetype is built for; others may match too (e.g. 불안 also matches S4R1).
ARCHETYPES: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("no rule", ("neutral", 0.45, 5.0, 6.0, 4.0, 5.5, "INTJ")),
    ("S1R1 (+S4R1)", ("불안", 0.3, 4.0, 6.0, 4.0, 5.5, "ENFP")),
    ("S1R3", ("지루함", 0.2, 3.0, 6.0, 4.0, 5.5, "ISTP")),
    ("S2R1", ("neutral", 0.3, 5.0, 6.0, 4.0, 3.0, None)),
    ("S2R2", ("happy", 0.8, 7.0, 7.0, 4.0, 6.0, "ESFJ")),
    ("S3R1", ("neutral", 0.45, 5.0, 6.0, 7.0, 5.5, "INFP")),
    ("S3R2 (high_stress route)", ("neutral", 0.45, 5.0, 6.0, 9.0, 5.5, "ENTJ")),
    ("S3R3", ("calm", 0.45, 6.0, 6.0, 2.0, 7.0, "ISFJ")),
    ("S4R1", ("분노", 0.6, 5.0, 6.0, 4.0, 5.5, "ESTP")),
    ("S4R2", ("neutral", 0.45, 5.0, 3.0, 4.0, 5.5, "INTP")),
    ("mixed", ("좌절", 0.1, 1.0, 2.0, 8.5, 2.0, "ENTP")),
)
EMOTIONS = ("neutral", "happy", "calm", "불안", "지루함", "분노", "피로", "슬픔")
MBTIS = ("INTJ", "ENFP", "ISTP", "ESFJ", "INFP", "ENTJ", "ISFJ", "ESTP", "INTP", "ENTP")
CLASSES = ("A", "B", "C", "D")
TABLES = (
    "user",
    "alt42_students",
    "alt42_learning_sessions",
    "alt42_student_profiles",
    "alt42_student_biometrics",
)
COLUMNS = {
    "user": "(id, username, deleted)",
    "alt42_students": "(student_id, userid, grade, class, mbti, updated_at)",
    "alt42_learning_sessions": "(student_id, start_time, end_time, session_end)",
    "alt42_student_profiles": (
        "(user_id, student_id, mbti_type, emotion_state, immersion_level,"
        " engagement_score, math_confidence, updated_at)"
    ),
    "alt42_student_biometrics": (
        "(student_id, stress_level, concentration_level, created_at, updated_at)"
    ),
}
NULL = "\\N"


@dataclass
class Population:
    """What was loaded: counts per table and per kind of student."""

    active: int
    inactive: int
    rows: dict[str, int]
    seconds: float


def _ts(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _n(value: Any) -> str:
    return NULL if value is None else str(value)


def archetype_of(student: int) -> int:
    return (student * 7 + student // 20) % len(ARCHETYPES)


def _rows(  # noqa: PLR0912 - one branch per kind of row, on purpose
    n_active: int, now: dt.datetime, seed: int
) -> Iterator[tuple[str, str]]:
    """(table, tsv line) for every row of the population."""
    rng = random.Random(seed)
    rnd = rng.random
    unix_now = int(now.timestamp())
    hour = dt.timedelta(hours=1)
    n_inactive = n_active // 4
    for sid in range(1, n_active + n_inactive + 1):
        active = sid <= n_active
        kind = sid % 20
        s = str(sid)
        # sessions
        if active:
            if sid % 3 == 0:
                start = unix_now - int(rnd() * 12 * 3600) - 60
                yield "alt42_learning_sessions", f"{s}\t{start}\t{NULL}\t{NULL}"
            else:
                end = now - hour * (0.1 + rnd() * 20)
                start = int(end.timestamp()) - 1800
                yield (
                    "alt42_learning_sessions",
                    f"{s}\t{start}\t{int(end.timestamp())}\t{_ts(end)}",
                )
            for _ in range(sid % 3):
                end = now - hour * (30 + rnd() * 24 * 30)
                start = int(end.timestamp()) - 2400
                yield (
                    "alt42_learning_sessions",
                    f"{s}\t{start}\t{int(end.timestamp())}\t{_ts(end)}",
                )
        else:
            for _ in range(1 + sid % 2):
                if rnd() < 0.3:
                    start = unix_now - int((2 + rnd() * 3) * 86400)
                    yield "alt42_learning_sessions", f"{s}\t{start}\t{NULL}\t{NULL}"
                else:
                    end = now - hour * (48 + rnd() * 24 * 8)
                    start = int(end.timestamp()) - 1800
                    yield (
                        "alt42_learning_sessions",
                        f"{s}\t{start}\t{int(end.timestamp())}\t{_ts(end)}",
                    )
        if kind == 0:
            continue  # unknown to Moodle and to ALT42
        deleted = 1 if kind == 1 else 0
        yield "user", f"{sid}\tstudent{sid}\t{deleted}"
        if kind == 1:
            continue
        mbti = MBTIS[sid % len(MBTIS)]
        if kind != 2:
            userid = NULL if kind == 3 else s
            updated = _ts(now - hour * rnd() * 24 * 30)
            grade = 7 + sid % 6
            yield "alt42_students", f"{s}\t{userid}\t{grade}\t{CLASSES[sid % 4]}\t{mbti}\t{updated}"
        if kind == 4 or not active:
            continue
        # profiles: two old random ones, then the archetype as the latest
        emotion, engagement, immersion, confidence, stress, concentration, ptype = ARCHETYPES[
            archetype_of(sid)
        ][1]
        for age in (24 * 20 + rnd() * 24 * 10, 24 + rnd() * 24 * 10):
            yield (
                "alt42_student_profiles",
                "\t".join(
                    (
                        s,
                        NULL if kind == 2 or rnd() < 0.5 else s,
                        MBTIS[int(rnd() * len(MBTIS))],
                        EMOTIONS[int(rnd() * len(EMOTIONS))],
                        f"{rnd() * 10:.2f}",
                        f"{rnd():.2f}",
                        f"{rnd() * 10:.2f}",
                        _ts(now - hour * age),
                    )
                ),
            )
        yield (
            "alt42_student_profiles",
            "\t".join(
                (
                    s,
                    NULL if kind == 2 or sid % 2 else s,
                    _n(ptype),
                    emotion,
                    f"{immersion:.2f}",
                    f"{engagement:.2f}",
                    f"{confidence:.2f}",
                    _ts(now - hour * (0.5 + rnd() * 10)),
                )
            ),
        )
        # biometrics: three older random measurements, then the archetype as the latest
        for age in (72 + rnd() * 48, 30 + rnd() * 24, 12 + rnd() * 10):
            moment = _ts(now - hour * age)
            yield (
                "alt42_student_biometrics",
                f"{s}\t{rnd() * 10:.2f}\t{rnd() * 10:.2f}\t{moment}\t{moment}",
            )
        moment = _ts(now - hour * (0.2 + rnd() * 10))
        yield (
            "alt42_student_biometrics",
            f"{s}\t{stress:.2f}\t{concentration:.2f}\t{moment}\t{moment}",
        )


def load(
    conn: Any, n_active: int, now: dt.datetime, prefix: str = "mdl_", seed: int = 42
) -> Population:
    """Generate and load the population through ``conn`` (needs ``local_infile=True``)."""
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="alt42-bench-pop-"))
    paths = {table: workdir / f"{table}.tsv" for table in TABLES}
    counts = dict.fromkeys(TABLES, 0)
    try:
        with contextlib.ExitStack() as stack:
            files = {
                t: stack.enter_context(open(p, "w", encoding="utf-8")) for t, p in paths.items()
            }
            buffers: dict[str, list[str]] = {table: [] for table in TABLES}
            for table, line in _rows(n_active, now, seed):
                buf = buffers[table]
                buf.append(line)
                if len(buf) >= 50_000:
                    files[table].write("\n".join(buf) + "\n")
                    counts[table] += len(buf)
                    buf.clear()
            for table, buf in buffers.items():
                if buf:
                    files[table].write("\n".join(buf) + "\n")
                    counts[table] += len(buf)
        with conn.cursor() as cur:
            for table in TABLES:
                cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE `{prefix}{table}`"
                    " CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t'"
                    f" LINES TERMINATED BY '\\n' {COLUMNS[table]}",
                    (str(paths[table]),),
                )
            cur.execute(f"ANALYZE TABLE {', '.join(f'`{prefix}{t}`' for t in TABLES)}")
            cur.fetchall()
        conn.commit()
    finally:
        for path in paths.values():
            if path.exists():
                os.unlink(path)
        workdir.rmdir()
    return Population(n_active, n_active // 4, counts, time.monotonic() - started)
