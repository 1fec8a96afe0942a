DROP INDEX vpp_tokens_u_id;
ALTER TABLE vpp_tokens DROP COLUMN u_id;
