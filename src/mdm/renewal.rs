//! Device identities are renewed ahead of their end: tafel sends an enrolled iPad its
//! enrollment profile again (same identifier, server and topic) with a challenge that
//! renews the certificate the iPad is bound to. The iPad gets a new identity over SCEP
//! and authenticates with it; the binding follows (it renews the old one). This is how
//! iOS renews an MDM identity: its SCEP payload has no renewal of its own.

use std::time::Duration;

use crate::enrollment::{self, tokens};
use crate::error::{ApiError, ApiResult};
use crate::protocol::Command;
use crate::queue::{self, EnqueueOptions};
use crate::state::AppState;

/// How often the renewal pass runs.
const EVERY: Duration = Duration::from_secs(6 * 3600);
/// Devices renewed per pass at most (the rest next time).
const BATCH: i64 = 500;

/// Starts the renewal pass (a minute after start, then every six hours), once per six
/// hours across all nodes ([`crate::jobs`]).
pub fn start(state: AppState) {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let job = crate::jobs::Job::new(crate::jobs::names::IDENTITY_RENEWAL, EVERY);
        loop {
            let ran = crate::jobs::once(&state.db, job, || pass(&state, chrono::Utc::now())).await;
            match ran {
                None | Some(Ok(0)) => {}
                Some(Ok(n)) => tracing::info!(devices = n, "identity renewals sent"),
                Some(Err(e)) => {
                    tracing::error!(error = %e.message, "identity renewal pass failed")
                }
            }
            tokio::time::sleep(EVERY).await;
        }
    });
}

/// Queues an identity renewal for every active device whose identity ends within
/// `mdm.identity_renew_before_days` of `now`; returns how many.
pub async fn pass(state: &AppState, now: chrono::DateTime<chrono::Utc>) -> ApiResult<usize> {
    let horizon =
        now + chrono::Duration::days(i64::from(state.settings.mdm.identity_renew_before_days));
    let s = state.clone();
    let renewed = state
        .db
        .run(move |conn| -> ApiResult<Vec<String>> {
            let due = enrollment::due_for_renewal(conn, horizon.naive_utc(), BATCH)?;
            let mut renewed = Vec::with_capacity(due.len());
            for d in due {
                conn.write_tx(|conn| renew_one(conn, &s, &d))?;
                renewed.push(d.id);
            }
            Ok(renewed)
        })
        .await?;
    let n = renewed.len();
    state.push.notify(renewed);
    Ok(n)
}

fn renew_one(
    conn: &mut crate::db::DbConn,
    state: &AppState,
    d: &enrollment::DueForRenewal,
) -> ApiResult<()> {
    let tenant = crate::org::tenant(conn, &d.token.tenant_id)?
        .ok_or_else(|| ApiError::internal("the device's authority is gone"))?;
    let school = crate::org::school(conn, &d.token.school_id)?
        .ok_or_else(|| ApiError::internal("the device's school is gone"))?;
    // The profile replaces the one the iPad has: as locked as that one was.
    let removal_disallowed = tokens::is_ade(conn, &d.token.id)?
        && !crate::ade::school::settings(conn, &school.id)?
            .settings
            .profile
            .is_mdm_removable;
    let challenge = tokens::renewal_challenge(conn, &d.token.id, &d.udid, &d.certificate).map_err(
        |e| match e {
            tokens::TokenError::Db(e) => ApiError::from(e),
            other => ApiError::internal(other),
        },
    )?;
    let profile = super::enroll::signed_profile(
        state,
        &d.token,
        &challenge,
        &tenant,
        &school,
        removal_disallowed,
    )?;
    let opts = EnqueueOptions {
        priority: 1,
        source: "renewal".into(),
        item_key: Some(enrollment::RENEWAL_KEY.clone()),
        action: Some(crate::queue::Action::Renew),
        ..EnqueueOptions::default()
    };
    queue::enqueue_in_tx(
        conn,
        &Command::install_profile(profile),
        std::slice::from_ref(&d.id),
        &opts,
    )
    .map_err(|e| match e {
        queue::QueueError::Db(e) => ApiError::from(e),
        other => ApiError::internal(other),
    })?;
    crate::audit::record(
        conn,
        &crate::audit::Entry::new("system:renewal", "renew_identity", "device")
            .object(&d.id)
            .scope(Some(&d.token.tenant_id), Some(&d.token.school_id))
            .summary(serde_json::json!({"udid": d.udid, "certificate": d.certificate})),
    )?;
    Ok(())
}
