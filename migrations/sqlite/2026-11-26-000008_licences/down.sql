DROP TABLE vpp_licences;
DROP TABLE vpp_assets;
DROP TABLE vpp_tokens;
