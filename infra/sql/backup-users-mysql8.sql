-- The same users as backup-users.sql, for RDS for MySQL 8.0 / 8.4 (MySQL 8 syntax: dynamic
-- privileges instead of mysql.proc and SET USER). Run once as the master user; replace the
-- passwords, or use IAM authentication (see backup-users.sql). Not run against a MySQL server
-- in this project's CI (none installs here); the restore's pre-flight names anything missing.

-- The backup user (dump, incremental): reads everything, changes nothing.
CREATE USER IF NOT EXISTS 'toc_backup'@'%' IDENTIFIED BY 'CHANGE-ME-or-use-IAM';
GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON `toc_sis`.* TO 'toc_backup'@'%';
-- Stored routine bodies (MySQL 8.0.20+); without it the dump refuses rather than leave them out.
GRANT SHOW_ROUTINE ON *.* TO 'toc_backup'@'%';
-- The binary log position recorded beside the snapshot (SHOW BINARY LOG STATUS).
GRANT REPLICATION CLIENT ON *.* TO 'toc_backup'@'%';

-- The binlog archive user (binlog function, `toc-backup binlog archive`): reads the server's
-- binlog as a replica does. REPLICATION SLAVE streams it (every database's changes: the binlog
-- is server-wide, replay keeps only toc_sis); REPLICATION CLIENT reads where it ends and which
-- files the server still holds (SHOW BINARY LOGS). Nothing else: it cannot read a table.
CREATE USER IF NOT EXISTS 'toc_binlog'@'%' IDENTIFIED BY 'CHANGE-ME-or-use-IAM';
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'toc_binlog'@'%';
-- The server must write ROW events with full images and column names (RDS parameter group):
--   binlog_format=ROW, binlog_row_image=FULL, binlog_row_metadata=FULL, binlog_checksum=CRC32

-- The restore-test user: full rights on its scratch databases only.
CREATE USER IF NOT EXISTS 'toc_restore_test'@'%' IDENTIFIED BY 'CHANGE-ME-or-use-IAM';
GRANT ALL PRIVILEGES ON `toc\_sis\_restore\_test\_%`.* TO 'toc_restore_test'@'%';
-- Objects whose DEFINER is another account (MySQL 8.2+ also offers SET_ANY_DEFINER), and
-- reading their routine bodies back to verify them.
GRANT SET_USER_ID ON *.* TO 'toc_restore_test'@'%';
GRANT SHOW_ROUTINE ON *.* TO 'toc_restore_test'@'%';
-- With the binary log on (every RDS instance with backups), functions and triggers also need
-- log_bin_trust_function_creators = 1 in the DB parameter group.
