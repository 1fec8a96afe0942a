DROP INDEX assignments_lesson;
ALTER TABLE assignments DROP COLUMN lesson_request_id;
DROP TABLE lesson_requests;
DROP TABLE approved_apps;
DROP TABLE lesson_settings;
