-- 0003: "users" become "accounts", the directory's vocabulary.
-- The migration itself succeeds; the defect is that this release's code still reads "users".
ALTER TABLE users RENAME TO accounts;
