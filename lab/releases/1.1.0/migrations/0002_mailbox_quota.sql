-- 0002: mailbox quotas, and an audit trail of administrative changes.
-- Existing mailboxes get the default quota; the migration records what it did.
ALTER TABLE mailboxes ADD COLUMN quota_mb integer NOT NULL DEFAULT 1024 CHECK (quota_mb > 0);

CREATE TABLE audit_events (
    id     bigserial PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text NOT NULL,
    action text NOT NULL
);

INSERT INTO audit_events (actor, action)
SELECT 'migration 0002', 'quota_mb set to 1024 on ' || count(*) || ' mailbox(es)' FROM mailboxes;
