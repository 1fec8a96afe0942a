-- Apple's library id of a content token's location (`uId` of `GET /mdm/v2/client/config`):
-- a renewed token of a location replaces the stored one instead of adding a second.
ALTER TABLE vpp_tokens ADD COLUMN u_id TEXT;
CREATE UNIQUE INDEX vpp_tokens_u_id ON vpp_tokens(u_id);
