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

-- The restore-test user (restore-test function, `toc-backup restore-test`): restores the latest
-- backup into a scratch database `toc_sis_restore_test_<time>`, verifies it and drops it. It is
-- confined to those scratch databases and acts as nobody but itself: it has no global privilege
-- and no SET USER (MariaDB) / SUPER. With SET USER (or SUPER) it could create a
-- `DEFINER=root@localhost SQL SECURITY DEFINER` procedure in a scratch database and call it:
-- CREATE USER, GRANT ALL … as root, from a job that runs unattended every month. So the
-- restore test creates every view, routine, trigger and event as itself (`--definer current`,
-- its default) and verifies their definitions without the DEFINER clause.
-- Every statement here can be run by the RDS for MariaDB master user, which has no SUPER,
-- SET USER or DELETE HISTORY and so cannot GRANT ALL on a database either.
CREATE USER IF NOT EXISTS 'toc_restore_test'@'%' IDENTIFIED BY 'CHANGE-ME-or-use-IAM';
-- Starts from nothing: takes away what earlier versions of this file granted (SET USER on
-- *.*, ALL on the scratch databases, SELECT on mysql.proc), and anything granted by hand. (The
-- master may run it: this form of REVOKE needs only the CREATE USER privilege.)
REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'toc_restore_test'@'%';
-- Each privilege on the scratch databases only (the pattern matches no other database):
--   CREATE             the scratch database itself, its tables, the restore's progress table
--   DROP               dropping the scratch database afterwards (pass or fail), a restore
--                      started again (--force), views removed to load them again, TRUNCATE
--   INSERT             loading the rows (INSERT, LOAD DATA LOCAL INFILE), incremental changes
--   DELETE             incremental deletes (rows removed or about to be rewritten, by key)
--   UPDATE             the progress table (INSERT … ON DUPLICATE KEY UPDATE, SELECT … FOR UPDATE)
--   SELECT             the verification: every table's rows fingerprinted, every definition
--   ALTER, INDEX       secondary keys dropped before the load and added back after it; the
--                      progress table's rename and comment
--   REFERENCES         foreign keys between the restored tables
--   CREATE VIEW, SHOW VIEW          views, and reading their definitions back to verify them
--   CREATE ROUTINE, ALTER ROUTINE   procedures and functions (ALTER ROUTINE drops one to load
--                                   it again); their creator may execute them
--   TRIGGER            triggers (created after the rows are loaded, so none fires)
--   EVENT              events (should the event scheduler run one, it runs as this user)
-- Not granted: LOCK TABLES, CREATE TEMPORARY TABLES, EXECUTE (the restore runs none of them),
-- GRANT OPTION, DELETE HISTORY, and nothing on *.*, mysql.* or the live database.
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES,
      CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, TRIGGER, EVENT
      ON `toc\_sis\_restore\_test\_%`.* TO 'toc_restore_test'@'%';
-- The objects' definers become toc_restore_test, so it reads their bodies back as their
-- definer: no SELECT on mysql.proc (which would show every database's routine bodies).
-- On a server with the binary log on (every RDS instance with backups), creating functions
-- and triggers without SUPER also needs log_bin_trust_function_creators = 1 in the DB
-- parameter group; the restore and the restore test say so before creating anything.

-- RDS IAM authentication instead of passwords (then set DATABASE_IAM_AUTH=true):
--   CREATE USER 'toc_backup'@'%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS';
--   ALTER USER 'toc_backup'@'%' REQUIRE SSL;
-- Binlog retention on RDS MySQL, if the snapshot's binlog position is to be replayed for
-- point-in-time recovery beyond RDS's own:
--   CALL mysql.rds_set_configuration('binlog retention hours', 168);
