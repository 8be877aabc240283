-- The TOC-SIS sample schema: the tables of the strategy document's three tiers, with foreign
-- keys, updated_at columns, a view, a function, a procedure, a trigger and an event.
SET NAMES utf8mb4;
SET SESSION foreign_key_checks = 0;

CREATE TABLE programmes (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  code VARCHAR(16) NOT NULL UNIQUE,
  title VARCHAR(200) NOT NULL,
  nfq_level TINYINT UNSIGNED NOT NULL,
  credits SMALLINT UNSIGNED NOT NULL,
  created_at DATETIME NOT NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE modules (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  programme_id INT UNSIGNED NOT NULL,
  code VARCHAR(16) NOT NULL UNIQUE,
  title VARCHAR(200) NOT NULL,
  credits TINYINT UNSIGNED NOT NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  CONSTRAINT fk_modules_programme FOREIGN KEY (programme_id) REFERENCES programmes (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE students (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  student_number CHAR(9) NOT NULL UNIQUE,
  first_name VARCHAR(100) NOT NULL,
  last_name VARCHAR(100) NOT NULL,
  email VARCHAR(190) NOT NULL UNIQUE,
  date_of_birth DATE NOT NULL,
  phone VARCHAR(32) NULL,
  address TEXT NULL,
  status ENUM('active','deferred','withdrawn','graduated') NOT NULL DEFAULT 'active',
  created_at DATETIME NOT NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  full_name VARCHAR(201) AS (CONCAT(first_name, ' ', last_name)) VIRTUAL,
  KEY idx_students_updated (updated_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE users (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(200) NOT NULL,
  email VARCHAR(190) NOT NULL UNIQUE,
  role SET('admin','registrar','lecturer','student') NOT NULL,
  password_hash CHAR(60) NOT NULL,
  last_login_at DATETIME(6) NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE enrolments (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  student_id INT UNSIGNED NOT NULL,
  programme_id INT UNSIGNED NOT NULL,
  module_id INT UNSIGNED NOT NULL,
  academic_year YEAR NOT NULL,
  status ENUM('enrolled','completed','withdrawn') NOT NULL,
  enrolled_on DATE NOT NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  UNIQUE KEY uq_enrolment (student_id, module_id, academic_year),
  CONSTRAINT fk_enrolments_student FOREIGN KEY (student_id) REFERENCES students (id),
  CONSTRAINT fk_enrolments_programme FOREIGN KEY (programme_id) REFERENCES programmes (id),
  CONSTRAINT fk_enrolments_module FOREIGN KEY (module_id) REFERENCES modules (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE assessment_components (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  module_id INT UNSIGNED NOT NULL,
  name VARCHAR(100) NOT NULL,
  weight DECIMAL(5,2) NOT NULL,
  due_at DATETIME NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  CONSTRAINT fk_components_module FOREIGN KEY (module_id) REFERENCES modules (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE student_grade_records (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  student_id INT UNSIGNED NOT NULL,
  module_id INT UNSIGNED NOT NULL,
  assessment_component_id INT UNSIGNED NOT NULL,
  grade DECIMAL(5,2) NULL,
  percentile FLOAT NULL,
  status ENUM('pending','submitted','graded','released') NOT NULL,
  feedback TEXT NULL,
  graded_at DATETIME(6) NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  KEY idx_grades_updated (updated_at),
  CONSTRAINT fk_grades_student FOREIGN KEY (student_id) REFERENCES students (id),
  CONSTRAINT fk_grades_module FOREIGN KEY (module_id) REFERENCES modules (id),
  CONSTRAINT fk_grades_component FOREIGN KEY (assessment_component_id) REFERENCES assessment_components (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE extensions_deferrals (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  student_id INT UNSIGNED NOT NULL,
  assessment_component_id INT UNSIGNED NOT NULL,
  kind ENUM('extension','deferral') NOT NULL,
  reason VARCHAR(500) NOT NULL,
  new_due_date DATE NULL,
  approved_by INT UNSIGNED NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  CONSTRAINT fk_ext_student FOREIGN KEY (student_id) REFERENCES students (id),
  CONSTRAINT fk_ext_component FOREIGN KEY (assessment_component_id) REFERENCES assessment_components (id),
  CONSTRAINT fk_ext_user FOREIGN KEY (approved_by) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE transcripts (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  student_id INT UNSIGNED NOT NULL,
  issued_at DATETIME NOT NULL,
  gpa DECIMAL(4,2) NOT NULL,
  award VARCHAR(200) NULL,
  document MEDIUMBLOB NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  CONSTRAINT fk_transcripts_student FOREIGN KEY (student_id) REFERENCES students (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE email_templates (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL UNIQUE,
  subject VARCHAR(200) NOT NULL,
  body TEXT NOT NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE email_logs (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  student_id INT UNSIGNED NULL,
  template_id INT UNSIGNED NULL,
  to_address VARCHAR(190) NOT NULL,
  subject VARCHAR(200) NOT NULL,
  body MEDIUMTEXT NOT NULL,
  status ENUM('queued','sent','bounced') NOT NULL,
  sent_at DATETIME(3) NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  CONSTRAINT fk_email_student FOREIGN KEY (student_id) REFERENCES students (id),
  CONSTRAINT fk_email_template FOREIGN KEY (template_id) REFERENCES email_templates (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE notification_preferences (
  user_id INT UNSIGNED NOT NULL PRIMARY KEY,
  email_enabled BOOLEAN NOT NULL,
  sms_enabled BOOLEAN NOT NULL,
  digest ENUM('none','daily','weekly') NOT NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  CONSTRAINT fk_prefs_user FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE system_logs (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  level ENUM('debug','info','warning','error') NOT NULL,
  message VARCHAR(500) NOT NULL,
  context JSON NULL,
  created_at DATETIME(6) NOT NULL,
  KEY idx_logs_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE file_uploads (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  student_id INT UNSIGNED NOT NULL,
  filename VARCHAR(255) NOT NULL,
  mime_type VARCHAR(100) NOT NULL,
  size_bytes INT UNSIGNED NOT NULL,
  sha256 BINARY(32) NOT NULL,
  content MEDIUMBLOB NOT NULL,
  uploaded_at DATETIME NOT NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  CONSTRAINT fk_uploads_student FOREIGN KEY (student_id) REFERENCES students (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE VIEW student_module_results AS
  SELECT s.student_number, m.code AS module_code,
         SUM(g.grade * c.weight / 100) AS weighted_grade, COUNT(*) AS components
  FROM student_grade_records g
  JOIN students s ON s.id = g.student_id
  JOIN modules m ON m.id = g.module_id
  JOIN assessment_components c ON c.id = g.assessment_component_id
  WHERE g.status = 'released'
  GROUP BY s.student_number, m.code;

DELIMITER ;;
CREATE FUNCTION module_weight_total(p_module INT UNSIGNED) RETURNS DECIMAL(6,2)
  READS SQL DATA
BEGIN
  DECLARE total DECIMAL(6,2);
  SELECT COALESCE(SUM(weight), 0) INTO total FROM assessment_components WHERE module_id = p_module;
  RETURN total;
END;;

CREATE PROCEDURE release_module_grades(IN p_module INT UNSIGNED)
BEGIN
  -- Grades are released only when the module's components add up to 100; a ';' in a comment.
  IF module_weight_total(p_module) <> 100 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'components do not add up to 100; not released';
  END IF;
  UPDATE student_grade_records SET status = 'released' WHERE module_id = p_module AND status = 'graded';
END;;

CREATE TRIGGER grade_change_audit AFTER UPDATE ON student_grade_records FOR EACH ROW
BEGIN
  IF NOT (OLD.grade <=> NEW.grade) THEN
    INSERT INTO system_logs (level, message, context, created_at)
    VALUES ('info', CONCAT('grade changed for record ', NEW.id),
            JSON_OBJECT('old', OLD.grade, 'new', NEW.grade), NOW(6));
  END IF;
END;;

CREATE EVENT purge_expired_system_logs ON SCHEDULE EVERY 1 DAY STARTS '2026-01-01 03:00:00'
  DO DELETE FROM system_logs WHERE created_at < NOW() - INTERVAL 2 YEAR;;
DELIMITER ;
