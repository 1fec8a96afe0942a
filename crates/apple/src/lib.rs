//! tafel's clients for Apple's services, each against a configurable base URL: Apple
//! School Manager's device enrollment API ([`ade`]), the APNs push service ([`push`]) and
//! the Apps and Books licence API ([`vpp`]). They speak Apple's wire formats and know
//! Apple's errors; they hold no database and make no decisions for the server.

pub mod ade;
pub mod push;
pub mod vpp;
