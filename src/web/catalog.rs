//! The catalog's pages: apps and profiles (from templates, their variables as form
//! fields).

use actix_web::web;

/// Routes under `/admin/katalog`.
pub fn config(_cfg: &mut web::ServiceConfig) {}
