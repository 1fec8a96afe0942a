-- A server token Apple refused with 403 T_C_NOT_SIGNED was marked failed for good;
-- it now waits for the terms to be accepted and is tried again at every sync.
UPDATE ade_tokens SET status = 'waiting_for_terms'
WHERE status = 'failed' AND last_error LIKE '%T_C_NOT_SIGNED%';
