-- The tables the heartbeat job READS, as Moodle and the other ALT42 parts create them
-- (spec section 2). Used by the Python tests, the benchmark, the demo and the Molecule
-- end-to-end scenario. Written with the default prefix `mdl_`; the test fixtures replace
-- it to exercise other prefixes. The job's own tables are created by `alt42-heartbeat migrate`.

CREATE TABLE IF NOT EXISTS mdl_user (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username VARCHAR(100) NOT NULL DEFAULT '',
    deleted TINYINT(1) NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS mdl_alt42_learning_sessions (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    student_id VARCHAR(32) NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT NULL,
    session_end TIMESTAMP NULL DEFAULT NULL,
    KEY idx_student (student_id),
    KEY idx_session_end (session_end)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS mdl_alt42_student_activity (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    student_id VARCHAR(20) NOT NULL,
    activity_date TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_activity_date (activity_date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS mdl_alt42_students (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    student_id VARCHAR(32) NOT NULL,
    userid BIGINT NULL,
    grade INT NULL,
    class VARCHAR(10) NULL,
    mbti VARCHAR(4) NULL,
    updated_at TIMESTAMP NULL DEFAULT NULL,
    UNIQUE KEY uq_student_id (student_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS mdl_alt42_student_profiles (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    student_id VARCHAR(32) NULL,
    mbti_type VARCHAR(4) NULL,
    emotion_state VARCHAR(20) NOT NULL DEFAULT 'neutral',
    immersion_level DECIMAL(5,2) NOT NULL DEFAULT 5.00,
    engagement_score DECIMAL(5,2) NOT NULL DEFAULT 0.00,
    math_confidence DECIMAL(5,2) NOT NULL DEFAULT 5.00,
    updated_at TIMESTAMP NULL DEFAULT NULL,
    KEY idx_user_id (user_id),
    KEY idx_student_id (student_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS mdl_alt42_student_biometrics (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    student_id VARCHAR(32) NOT NULL,
    stress_level DECIMAL(5,2) NOT NULL DEFAULT 0.00,
    concentration_level DECIMAL(5,2) NOT NULL DEFAULT 5.00,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NULL DEFAULT NULL,
    KEY idx_student_id (student_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
