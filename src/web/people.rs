//! People and organisation: authorities, schools, classes, carts and users.

use actix_web::web;

/// Routes under `/admin` for people and organisation.
pub fn config(_cfg: &mut web::ServiceConfig) {}
