DROP TABLE scep_challenges;
DROP TABLE enrollment_tokens;
