//! All integration tests in one binary (one link step). Each test gets its own
//! temporary SQLite file, or its own PostgreSQL schema when `TAFEL_TEST_POSTGRES_URL`
//! is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod ade;
mod ade_edge;
mod ade_enroll;
mod admin_scope;
mod app_icons;
mod assignments;
mod browser;
mod catalog_edits;
mod certificates;
mod cli;
mod console;
mod console_asm;
mod console_catalog;
mod console_journeys;
mod console_people;
mod device_actions;
mod device_trust;
mod device_truth;
mod editing;
mod enrollment;
mod exports;
mod foundation;
mod helpers;
mod hostile_bodies;
mod idempotency;
mod lessons;
mod licences;
mod metrics;
mod names;
mod openapi;
mod operations;
mod organisation;
mod profile_versions;
mod protocol_flow;
mod push;
mod reports;
mod secrets_at_rest;
mod service_desk;
mod vpp_client;
mod vpp_edge;
mod webhooks;
