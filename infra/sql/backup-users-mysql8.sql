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

-- The restore-test user (restore-test function, `toc-backup restore-test`): confined to its
-- scratch databases `toc_sis_restore_test_<time>`, acting as nobody but itself. No SET_USER_ID,
-- SET_ANY_DEFINER, SYSTEM_USER, SUPER or any other global privilege: with SET_USER_ID it could
-- create a `DEFINER=root@localhost SQL SECURITY DEFINER` procedure in a scratch database and
-- call it (CREATE USER, GRANT … as root, unattended every month). The restore test creates
-- every view, routine, trigger and event as itself (`--definer current`, its default) and
-- verifies their definitions without the DEFINER clause.
CREATE USER IF NOT EXISTS 'toc_restore_test'@'%' IDENTIFIED BY 'CHANGE-ME-or-use-IAM';
-- Starts from nothing: takes away what earlier versions of this file granted (SET_USER_ID and
-- SHOW_ROUTINE on *.*, ALL on the scratch databases) and anything granted by hand (this form of
-- REVOKE needs only the CREATE USER privilege, which the master has).
REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'toc_restore_test'@'%';
-- Why each privilege is there: see backup-users.sql (the same list). REFERENCES is checked by
-- MySQL 8.0.22+ for foreign keys; UPDATE also covers the progress table's SELECT … FOR UPDATE.
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES,
      CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, TRIGGER, EVENT
      ON `toc\_sis\_restore\_test\_%`.* TO 'toc_restore_test'@'%';
-- No SHOW_ROUTINE: the restored routines' definer is toc_restore_test, which reads their
-- bodies back as their definer (SHOW_ROUTINE would show every database's routine bodies).
-- With the binary log on (every RDS instance with backups), functions and triggers also need
-- log_bin_trust_function_creators = 1 in the DB parameter group.
