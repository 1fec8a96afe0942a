//! Notifications to outside systems by webhook: events are stored in the caller's own
//! transaction (an outbox) and POSTed afterwards as signed JSON, with retries.
//!
//! # Producing events
//!
//! Call [`Notifier::enqueue`] inside the transaction that makes the change, then
//! [`Notifier::wake`] after it committed. The event is stored exactly when the change
//! commits (a rolled-back transaction sends nothing) and survives restarts; `wake` only
//! makes it go out at once instead of at the sender's next look (at most
//! [`webhook::IDLE_POLL`] later). With no `webhooks.url` configured, `enqueue` writes
//! nothing.
//!
//! # What a receiver gets
//!
//! `POST <webhooks.url>` with the body
//! `{"id": "<delivery id>", "event": "lesson.created", "created_at": "<RFC 3339>", "data": {…}}`
//! and the headers
//!
//! - `Content-Type: application/json`
//! - `X-Tafel-Event`: the event name
//! - `X-Tafel-Delivery`: the delivery id, a UUIDv5 derived from the event and what it
//!   is about (for `lesson.ready`: the request and the lesson's start). It is the same on
//!   every retry and whichever node produced the event, and tafel stores an event with
//!   an id it holds already only once; a receiver can drop duplicates by it (delivery is
//!   at least once)
//! - `X-Tafel-Timestamp`: Unix seconds when this attempt was signed
//! - `X-Tafel-Signature`: `sha256=` and the lowercase hex HMAC-SHA256, keyed with the
//!   secret, of the timestamp, a `.`, and the raw body bytes
//!
//! The secret is the content of the secret file with surrounding whitespace removed,
//! used as bytes. A receiver recomputes the HMAC over `"<X-Tafel-Timestamp>.<body>"`,
//! compares in constant time ([`verify_signature`] does both), and rejects timestamps
//! more than a few minutes old to stop replays. Any 2xx answer counts as delivered;
//! anything else (including redirects, which are not followed) is retried after the
//! configured delays, honouring `Retry-After` on 429 and 503, until `max_attempts`.
//! Deliveries leave in creation order, but a retried one can arrive after newer ones:
//! order by `created_at` when it matters.
//!
//! Error policy: starting the notifier fails with [`NotifyError`] (secret file,
//! HTTP client); storing an event returns diesel's `QueryResult` so it composes with
//! the caller's transaction; delivery problems are recorded on the delivery row and
//! logged, never returned.

pub mod error;
pub mod secret;
pub mod signature;
pub mod store;
pub mod webhook;

pub use error::{InvalidEvent, NotifyError};
pub use secret::{SecretCopy, WebhookSecret};
pub use signature::verify_signature;
pub use store::Delivery;
pub use webhook::Notifier;
