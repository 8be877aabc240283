-- The database users the backup functions connect as, with the least they need.
-- Run once as the RDS master user; replace the passwords, or use IAM authentication (below).
-- `toc_sis` is the TOC-SIS database; `toc_sis_restore_test_%` are the restore test's scratch
-- databases.

-- The backup user (dump, incremental): reads everything, changes nothing.
CREATE USER IF NOT EXISTS 'toc_backup'@'%' IDENTIFIED BY 'CHANGE-ME-or-use-IAM';
-- SELECT: rows. SHOW VIEW, TRIGGER, EVENT: without them views, triggers and events are hidden
-- and the dump refuses to run (a smaller backup would pass for a whole one).
-- LOCK TABLES is not needed: the snapshot is START TRANSACTION WITH CONSISTENT SNAPSHOT.
GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON `toc_sis`.* TO 'toc_backup'@'%';
-- Stored routine bodies: MariaDB shows them to readers of mysql.proc; MySQL 8 needs
-- SHOW_ROUTINE (use the second line there instead).
GRANT SELECT ON `mysql`.`proc` TO 'toc_backup'@'%';
-- GRANT SHOW_ROUTINE ON *.* TO 'toc_backup'@'%';
-- The binlog position beside the snapshot on MySQL (MariaDB reports it without a privilege).
GRANT REPLICATION CLIENT ON *.* TO 'toc_backup'@'%';

-- The binlog archive user (binlog function, `toc-backup binlog archive`): reads the server's
-- binlog as a replica does. REPLICATION SLAVE streams it (every database's changes: the binlog
-- is server-wide, replay keeps only toc_sis); BINLOG MONITOR reads where it ends and which
-- files the server still holds (SHOW BINARY LOGS). Nothing else: it cannot read a table.
CREATE USER IF NOT EXISTS 'toc_binlog'@'%' IDENTIFIED BY 'CHANGE-ME-or-use-IAM';
GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'toc_binlog'@'%';
-- The server must write ROW events with full images and column names (RDS parameter group):
--   binlog_format=ROW, binlog_row_image=FULL, binlog_row_metadata=FULL, binlog_checksum=CRC32

-- The restore-test user: full rights on its scratch databases only.
CREATE USER IF NOT EXISTS 'toc_restore_test'@'%' IDENTIFIED BY 'CHANGE-ME-or-use-IAM';
GRANT ALL PRIVILEGES ON `toc\_sis\_restore\_test\_%`.* TO 'toc_restore_test'@'%';
-- Restored views, routines, triggers and events keep their DEFINER; creating objects for
-- another definer needs SET USER (MariaDB) / SET_USER_ID (MySQL) or SUPER.
GRANT SET USER ON *.* TO 'toc_restore_test'@'%';
-- The check after the load reads every restored routine's body back; the server shows a body
-- only to its definer or to readers of mysql.proc (MySQL 8: SHOW_ROUTINE, second line).
GRANT SELECT ON `mysql`.`proc` TO 'toc_restore_test'@'%';
-- GRANT SHOW_ROUTINE ON *.* TO 'toc_restore_test'@'%';
-- On a server with the binary log on (every RDS instance with backups), creating functions
-- and triggers without SUPER also needs log_bin_trust_function_creators = 1 in the DB
-- parameter group; the restore and the restore test say so before creating anything.

-- RDS IAM authentication instead of passwords (then set DATABASE_IAM_AUTH=true):
--   CREATE USER 'toc_backup'@'%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS';
--   ALTER USER 'toc_backup'@'%' REQUIRE SSL;
-- Binlog retention on RDS MySQL, if the snapshot's binlog position is to be replayed for
-- point-in-time recovery beyond RDS's own:
--   CALL mysql.rds_set_configuration('binlog retention hours', 168);
