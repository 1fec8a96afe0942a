DROP TABLE push_certificate_requests;
