-- Erasure fences a person's jobs before it removes their media: a fenced job is claimed by no
-- worker, and a worker still on one stops before its next write to the storage or a CRM.
ALTER TABLE jobs ADD COLUMN fenced_at BIGINT;
