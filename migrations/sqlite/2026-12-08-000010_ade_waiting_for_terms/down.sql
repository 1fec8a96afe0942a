UPDATE ade_tokens SET status = 'failed' WHERE status = 'waiting_for_terms';
