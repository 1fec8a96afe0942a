DROP TABLE ade_devices;
DROP TABLE ade_tokens;
