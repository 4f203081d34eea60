-- A small demo population for `scripts/demo` and the Molecule end-to-end scenario.
-- Times are relative to the moment it is loaded, so the students are active then.
-- Expected with the shipped rule book (see tests/test_demo_data.py):
--   1001 stress 9      -> S3R2, routing high_stress      1002 stress 7 -> S3R1
--   1003 불안, low engagement -> S1R1, S2R1, S4R1        1004 권태 + MBTI -> S1R3
--   1005 engaged, low confidence -> S2R2, S4R2           1006 calm, focused -> S3R3
--   1007 no profile or biometrics -> defaults             guest-77 unknown -> {student_id} only
--   1009 open session started 3 days ago, 1010 ended 2 days ago -> not active
SET time_zone = '+00:00';

INSERT INTO mdl_user (id, username, deleted) VALUES
    (1001, 'student1001', 0), (1002, 'student1002', 0), (1003, 'student1003', 0),
    (1004, 'student1004', 0), (1005, 'student1005', 0), (1006, 'student1006', 0),
    (1007, 'student1007', 0), (1009, 'student1009', 0), (1010, 'student1010', 0),
    (1011, 'student1011', 1);

INSERT INTO mdl_alt42_students (student_id, userid, grade, class, mbti, updated_at) VALUES
    ('1001', 1001, 10, 'A', 'ENFP', NOW()), ('1002', 1002, 11, 'B', 'ISTJ', NOW()),
    ('1003', 1003, 10, 'A', 'INFP', NOW()), ('1004', 1004, 12, 'C', 'INTJ', NOW()),
    ('1005', 1005, 11, 'B', 'ESTP', NOW()), ('1006', 1006, 10, 'A', 'ISFJ', NOW()),
    ('1011', 1011, 9, 'D', 'ENTJ', NOW());

INSERT INTO mdl_alt42_student_profiles
    (user_id, student_id, mbti_type, emotion_state, immersion_level, engagement_score, math_confidence, updated_at)
VALUES
    (1001, '1001', 'ENFP', 'neutral', 5.00, 0.60, 6.00, NOW() - INTERVAL 2 DAY),
    (1001, '1001', 'ENFP', '분노', 4.00, 0.70, 6.00, NOW()),
    (1002, '1002', 'ISTJ', 'neutral', 6.00, 0.55, 5.00, NOW()),
    (1003, '1003', 'INFP', '불안', 3.00, 0.30, 5.00, NOW()),
    (1004, '1004', 'INTJ', '권태', 2.00, 0.20, 5.00, NOW()),
    (1005, '1005', 'ESTP', 'neutral', 7.00, 0.80, 3.00, NOW()),
    (1006, '1006', 'ISFJ', 'neutral', 8.00, 0.90, 7.00, NOW());

INSERT INTO mdl_alt42_student_biometrics (student_id, stress_level, concentration_level, created_at) VALUES
    ('1001', 2.00, 6.00, NOW() - INTERVAL 3 HOUR),
    ('1001', 9.00, 4.00, NOW() - INTERVAL 10 MINUTE),
    ('1002', 7.00, 5.00, NOW() - INTERVAL 10 MINUTE),
    ('1003', 4.00, 3.00, NOW() - INTERVAL 10 MINUTE),
    ('1004', 3.00, 5.00, NOW() - INTERVAL 10 MINUTE),
    ('1005', 4.00, 6.00, NOW() - INTERVAL 10 MINUTE),
    ('1006', 1.00, 8.00, NOW() - INTERVAL 10 MINUTE);

INSERT INTO mdl_alt42_learning_sessions (student_id, start_time, end_time, session_end) VALUES
    ('1001', UNIX_TIMESTAMP() - 1800, NULL, NULL),
    ('1002', UNIX_TIMESTAMP() - 7200, UNIX_TIMESTAMP() - 3600, NOW() - INTERVAL 1 HOUR),
    ('1003', UNIX_TIMESTAMP() - 900, NULL, NULL),
    ('1004', UNIX_TIMESTAMP() - 5400, UNIX_TIMESTAMP() - 1800, NOW() - INTERVAL 30 MINUTE),
    ('1005', UNIX_TIMESTAMP() - 600, NULL, NULL),
    ('1006', UNIX_TIMESTAMP() - 3000, NULL, NULL),
    ('1007', UNIX_TIMESTAMP() - 1200, NULL, NULL),
    ('guest-77', UNIX_TIMESTAMP() - 1200, NULL, NULL),
    ('1009', UNIX_TIMESTAMP() - 3 * 86400, NULL, NULL),
    ('1010', UNIX_TIMESTAMP() - 2 * 86400 - 3600, UNIX_TIMESTAMP() - 2 * 86400, NOW() - INTERVAL 2 DAY);
