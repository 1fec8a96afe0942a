DROP TABLE shared_secrets;
DROP TABLE job_leases;
