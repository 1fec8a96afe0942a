//! Apps and Books client against the local simulator: real HTTP round trips.
//! (In the main crate: `tafel::vpp` and `tafel_sim::vpp`.)

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use tafel::vpp::{
    AssetRef, AssignmentFilter, BatchLimits, ContentToken, EventState, MdmInfo, RetryPolicy,
    VppClient, VppError,
};
use tafel_sim::vpp::{token_file, VppSim};

const KEYNOTE: &str = "361285480";
const PAGES: &str = "361309726";
const NUMBERS: &str = "361304891";
const GARAGEBAND: &str = "408709785";
const SWIFT_PLAYGROUNDS: &str = "908519492";

/// A district's content token, valid for a year.
#[expect(
    clippy::unwrap_used,
    reason = "test setup: a failure here should fail the test"
)]
fn district_token(org: &str) -> ContentToken {
    let file = token_file(org, Utc::now() + TimeDelta::days(365));
    ContentToken::parse(&file).unwrap()
}

/// Retries quick enough for tests; Retry-After still wins when Apple sends it.
fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(5),
    }
}

/// A simulated location and a client holding its token.
struct District {
    sim: VppSim,
    client: VppClient,
}

impl District {
    #[expect(
        clippy::unwrap_used,
        reason = "test setup: a failure here should fail the test"
    )]
    fn new() -> Self {
        let token = district_token("Schulamt Nord");
        let sim = VppSim::start(token.bearer()).unwrap();
        let client = VppClient::new(&sim.url, token, Duration::from_secs(5))
            .unwrap()
            .with_retry(quick_retries());
        Self { sim, client }
    }

    /// The same location seen by a client with another token.
    #[expect(
        clippy::unwrap_used,
        reason = "test setup: a failure here should fail the test"
    )]
    fn client_with(&self, token: ContentToken) -> VppClient {
        VppClient::new(&self.sim.url, token, Duration::from_secs(5))
            .unwrap()
            .with_retry(quick_retries())
    }
}

fn class(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i:04}")).collect()
}

#[tokio::test]
async fn paging_through_the_catalogue_returns_every_asset_once() {
    let d = District::new();
    for adam in [KEYNOTE, PAGES, NUMBERS, GARAGEBAND, SWIFT_PLAYGROUNDS] {
        d.sim.add_asset(adam, 30);
    }
    d.sim.set_page_size(2);

    let first = d.client.assets(0).await.unwrap();
    assert_eq!(first.assets.len(), 2);
    assert_eq!(
        (
            first.current_page_index,
            first.next_page_index,
            first.total_pages,
            first.size
        ),
        (0, Some(1), 3, 2)
    );
    assert!(first.version_id.is_some());
    assert_eq!(first.u_id.as_deref(), Some(tafel_sim::vpp::SIM_UID));
    let keynote = &first.assets[0];
    assert_eq!(keynote.adam_id, KEYNOTE);
    assert_eq!(keynote.pricing_param, "STDQ");
    assert_eq!(keynote.product_type, "App");
    assert_eq!(
        (
            keynote.assigned_count,
            keynote.available_count,
            keynote.total_count
        ),
        (0, 30, 30)
    );
    assert!(keynote.device_assignable && keynote.revocable);
    assert_eq!(keynote.supported_platforms, ["iOS"]);

    let all = d.client.all_assets().await.unwrap();
    let mut ids: Vec<_> = all.iter().map(|a| a.adam_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [KEYNOTE, NUMBERS, PAGES, GARAGEBAND, SWIFT_PLAYGROUNDS]
    );
    assert_eq!(d.sim.requests("/mdm/v2/assets"), 1 + 3);

    let one = d.client.asset(&AssetRef::stdq(NUMBERS)).await.unwrap();
    assert_eq!(one.map(|a| a.total_count), Some(30));
    assert!(d
        .client
        .asset(&AssetRef::stdq("1"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn teacher_gets_keynote_for_a_device_once_apple_finishes_the_event() {
    let d = District::new();
    d.sim.add_asset(KEYNOTE, 30);
    d.sim.set_polls_until_complete(2);
    let ipad = "DMPXK0001".to_owned();

    let events = d
        .client
        .associate(&[AssetRef::stdq(KEYNOTE)], std::slice::from_ref(&ipad))
        .await
        .unwrap();
    assert_eq!(events.len(), 1);

    // Apple works asynchronously: nothing is assigned until the event is done.
    let pending = d.client.event_status(&events[0]).await.unwrap();
    assert_eq!(pending.event_status, EventState::Pending);
    assert_eq!(pending.event_type.as_deref(), Some("ASSOCIATE"));
    assert!(d.sim.assignments().is_empty());

    let done = d
        .client
        .wait_for_event(
            &events[0],
            Duration::from_millis(10),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(done.event_status, EventState::Complete);
    assert_eq!((done.num_completed, done.num_requested), (1, 1));
    assert!(done.failures.is_empty());
    assert_eq!(d.sim.requests("/mdm/v2/status"), 3);

    let held = d
        .client
        .all_assignments(&AssignmentFilter::asset(KEYNOTE))
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].serial_number.as_deref(), Some(ipad.as_str()));
    assert_eq!(held[0].pricing_param, "STDQ");
    let asset = d
        .client
        .asset(&AssetRef::stdq(KEYNOTE))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((asset.assigned_count, asset.available_count), (1, 29));

    // After the lesson the licence goes back to the pool.
    let freed = d
        .client
        .disassociate(&[AssetRef::stdq(KEYNOTE)], std::slice::from_ref(&ipad))
        .await
        .unwrap();
    let done = d
        .client
        .wait_for_event(&freed[0], Duration::from_millis(10), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(done.event_type.as_deref(), Some("DISASSOCIATE"));
    assert_eq!(d.sim.counts(KEYNOTE), Some((0, 30)));
}

#[tokio::test]
async fn a_class_larger_than_the_licence_pool_gets_failures_for_the_extra_devices() {
    let d = District::new();
    d.sim.add_asset(GARAGEBAND, 3);
    let class_7b = class("7B", 5);

    let events = d
        .client
        .associate(&[AssetRef::stdq(GARAGEBAND)], &class_7b)
        .await
        .unwrap();
    let status = d.client.event_status(&events[0]).await.unwrap();
    assert_eq!(status.event_status, EventState::Failed);
    assert_eq!((status.num_completed, status.num_requested), (3, 5));
    let short: Vec<_> = status.serials_without_license().into_iter().collect();
    assert_eq!(short, ["7B0004", "7B0005"]);
    assert!(status.failures.iter().all(|f| f.error_number == 9709));
    assert_eq!(
        status.failures[0].error_info.as_ref().unwrap().assets,
        [AssetRef::stdq(GARAGEBAND)]
    );

    // Asking again for more devices never pushes the count past the total.
    let more = d
        .client
        .associate(&[AssetRef::stdq(GARAGEBAND)], &class("7C", 2))
        .await
        .unwrap();
    let again = d.client.event_status(&more[0]).await.unwrap();
    assert_eq!(again.failed_serials().len(), 2);
    assert_eq!(d.sim.counts(GARAGEBAND), Some((3, 3)));
    let asset = d
        .client
        .asset(&AssetRef::stdq(GARAGEBAND))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((asset.assigned_count, asset.available_count), (3, 0));
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_honoured_then_the_call_succeeds() {
    let d = District::new();
    d.sim.fail_next(1, 429, Some(1));
    let started = Instant::now();
    let config = d.client.client_config().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After ignored"
    );
    assert_eq!(config.location_name.as_deref(), Some("Simulierte Schule"));
    assert_eq!(d.sim.requests("/mdm/v2/client/config"), 2);
    assert_eq!(d.client.requests_made(), 2);
}

#[tokio::test]
async fn server_errors_back_off_and_give_up_after_the_allowed_attempts() {
    let d = District::new();
    // 503 and a proxy's HTML 502 without Retry-After: exponential backoff.
    d.sim.fail_next(1, 503, None);
    d.sim.fail_next(1, 502, None);
    d.client.all_assets().await.unwrap();
    assert_eq!(d.sim.requests("/mdm/v2/assets"), 3);

    // Still limited after four attempts: the caller learns it is rate limited.
    d.sim.fail_next(10, 429, None);
    let error = d.client.client_config().await.unwrap_err();
    assert!(
        matches!(error, VppError::RateLimited { retry_after: None }),
        "{error}"
    );
    assert_eq!(d.sim.requests("/mdm/v2/client/config"), 4);

    // A pause longer than the client may wait is handed back at once.
    let d = District::new();
    d.sim.fail_next(1, 429, Some(3600));
    let error = d.client.client_config().await.unwrap_err();
    assert!(
        matches!(error, VppError::RateLimited { retry_after: Some(wait) } if wait == Duration::from_secs(3600)),
        "{error}"
    );
    assert_eq!(d.client.requests_made(), 1);
}

#[tokio::test]
async fn an_expired_or_revoked_token_is_reported_and_never_retried() {
    let d = District::new();
    d.sim.expire_token();
    let error = d.client.client_config().await.unwrap_err();
    assert!(matches!(error, VppError::TokenExpired { .. }), "{error}");
    assert!(error.is_token_problem());
    assert_eq!(error.error_number(), Some(9621));
    assert_eq!(d.sim.requests("/mdm/v2/client/config"), 1);

    let d = District::new();
    d.sim.revoke_token();
    let error = d
        .client
        .associate(&[AssetRef::stdq(KEYNOTE)], &class("5A", 1))
        .await
        .unwrap_err();
    assert!(matches!(error, VppError::TokenRevoked { .. }), "{error}");
    assert_eq!(d.client.requests_made(), 1);
}

#[tokio::test]
async fn a_token_from_another_location_is_refused_as_invalid() {
    let d = District::new();
    let stranger = d.client_with(district_token("Schulamt Süd"));
    let error = stranger.assets(0).await.unwrap_err();
    assert!(
        matches!(
            error,
            VppError::TokenInvalid {
                error_number: Some(9622),
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(stranger.requests_made(), 1);
}

#[tokio::test]
async fn tafel_claims_the_token_and_notices_when_another_mdm_takes_it_over() {
    let d = District::new();
    let tafel = MdmInfo {
        id: "4f1c2a8e-0b7d-4c55-9d8e-3a1f6b2c9e01".into(),
        name: "tafel".into(),
        metadata: r#"{"server":"4f1c2a8e-0b7d-4c55-9d8e-3a1f6b2c9e01","tenant":"nord"}"#.into(),
    };
    let before = d.client.client_config().await.unwrap();
    assert!(before.mdm_info.is_none());
    assert_eq!(before.country_iso2a_code.as_deref(), Some("DE"));
    assert_eq!(before.default_platform.as_deref(), Some("volumestore"));
    assert_eq!(
        before.website_url.as_deref(),
        Some("https://school.apple.com")
    );

    let claimed = d.client.set_mdm_info(tafel.clone()).await.unwrap();
    assert!(claimed.is_managed_by(&tafel.id));
    let read = d.client.client_config().await.unwrap();
    assert_eq!(read.mdm_info.as_ref(), Some(&tafel));
    let posted = d.sim.request_log().into_iter().rev().nth(1).unwrap();
    assert_eq!(posted.method, "POST");
    assert_eq!(posted.body.unwrap()["mdmInfo"]["name"], "tafel");

    // Another MDM uploads the same token and writes its own identity.
    d.sim.set_mdm_info("JAMF-7731", "Jamf Pro", "");
    let watchful = d
        .client_with(d.client.token().clone())
        .expect_mdm_id(tafel.id.clone());
    let error = watchful.client_config().await.unwrap_err();
    let VppError::OtherMdm(other) = error else {
        panic!("expected OtherMdm, got {error}");
    };
    assert_eq!(other.name, "Jamf Pro");
    let error = watchful.all_assets().await.unwrap_err();
    assert!(matches!(error, VppError::OtherMdm(_)), "{error}");

    // Claiming the token back is allowed and ends the conflict.
    watchful.set_mdm_info(tafel.clone()).await.unwrap();
    assert!(watchful
        .client_config()
        .await
        .unwrap()
        .is_managed_by(&tafel.id));
    assert_eq!(
        d.sim.mdm_info().map(|(_, name, _)| name).as_deref(),
        Some("tafel")
    );
}

#[tokio::test]
async fn a_whole_school_is_split_into_batches_within_apples_limits() {
    let d = District::new();
    d.sim.add_asset(KEYNOTE, 5000);
    let school = class("GY", 2500);

    let events = d
        .client
        .associate(&[AssetRef::stdq(KEYNOTE)], &school)
        .await
        .unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(d.sim.requests("/mdm/v2/assets/associate"), 3);
    let sizes: Vec<usize> = d
        .sim
        .request_log()
        .iter()
        .filter(|r| r.path == "/mdm/v2/assets/associate")
        .map(|r| {
            r.body.as_ref().unwrap()["serialNumbers"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes, [1000, 1000, 500]);
    assert_eq!(d.sim.counts(KEYNOTE), Some((2500, 5000)));

    // 30 assets for 10 devices: 25 + 5 assets.
    let many: Vec<AssetRef> = (0..30)
        .map(|i| AssetRef::stdq(format!("9000{i:02}")))
        .collect();
    for asset in &many {
        d.sim.add_asset(&asset.adam_id, 10);
    }
    let events = d.client.associate(&many, &class("LZ", 10)).await.unwrap();
    assert_eq!(events.len(), 2);

    // Duplicates are dropped before sending (Apple refuses them with 9705).
    let twice = vec!["DUP1".to_owned(), "DUP2".to_owned(), "DUP1".to_owned()];
    let events = d
        .client
        .associate(&[AssetRef::stdq(KEYNOTE)], &twice)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let last = d.sim.request_log().pop().unwrap();
    assert_eq!(
        last.body.unwrap()["serialNumbers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Nothing to do: no request at all.
    let before = d.client.requests_made();
    assert!(d.client.associate(&[], &school).await.unwrap().is_empty());
    assert!(d
        .client
        .disassociate(&[AssetRef::stdq(KEYNOTE)], &[])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(d.client.requests_made(), before);
}

#[tokio::test]
async fn limits_from_service_config_are_adopted_and_fetched_without_the_token() {
    let d = District::new();
    d.sim.set_limits(10, 100);
    d.sim.add_asset(PAGES, 1000);
    let limits = d.client.refresh_limits().await.unwrap();
    assert_eq!(
        limits,
        BatchLimits {
            max_assets: 10,
            max_serial_numbers: 100
        }
    );
    let config_request = d.sim.request_log().pop().unwrap();
    assert_eq!(config_request.path, "/mdm/v2/service/config");
    assert!(
        !config_request.authorized,
        "the token went to service/config"
    );

    let events = d
        .client
        .associate(&[AssetRef::stdq(PAGES)], &class("9C", 250))
        .await
        .unwrap();
    assert_eq!(events.len(), 3);

    // With the limits ignored, the simulator refuses as Apple does (9702).
    let careless = d
        .client_with(d.client.token().clone())
        .with_limits(BatchLimits {
            max_assets: 25,
            max_serial_numbers: 1000,
        });
    let error = careless
        .associate(&[AssetRef::stdq(PAGES)], &class("9D", 101))
        .await
        .unwrap_err();
    assert_eq!(error.error_number(), Some(9702), "{error}");
    assert_eq!(careless.requests_made(), 1, "a 400 must not be retried");
}

#[tokio::test]
async fn assignments_of_one_device_are_found_across_pages() {
    let d = District::new();
    d.sim.set_page_size(2);
    for adam in [KEYNOTE, PAGES, NUMBERS] {
        d.sim.add_asset(adam, 10);
    }
    let apps: Vec<AssetRef> = [KEYNOTE, PAGES, NUMBERS].map(AssetRef::stdq).to_vec();
    d.client.associate(&apps, &class("8A", 3)).await.unwrap();

    let everything = d
        .client
        .all_assignments(&AssignmentFilter::default())
        .await
        .unwrap();
    assert_eq!(everything.len(), 9);
    let one_ipad = d
        .client
        .all_assignments(&AssignmentFilter::device("8A0002"))
        .await
        .unwrap();
    let mut held: Vec<_> = one_ipad.iter().map(|a| a.adam_id.as_str()).collect();
    held.sort_unstable();
    assert_eq!(held, [KEYNOTE, NUMBERS, PAGES]);
    let page = d
        .client
        .assignments(&AssignmentFilter::asset(PAGES).and_device("8A0003"), 0)
        .await
        .unwrap();
    assert_eq!(page.assignments.len(), 1);
    assert_eq!(page.next_page_index, None);
}

#[tokio::test]
async fn books_cannot_go_to_devices_and_waiting_has_a_limit() {
    let d = District::new();
    d.sim.add_book("1234567890", 10);
    let error = d
        .client
        .associate(&[AssetRef::stdq("1234567890")], &class("6B", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            VppError::Status {
                code: 400,
                error_number: Some(9707),
                ..
            }
        ),
        "{error}"
    );

    d.sim.add_asset(KEYNOTE, 10);
    d.sim.set_polls_until_complete(1000);
    let events = d
        .client
        .associate(&[AssetRef::stdq(KEYNOTE)], &class("6B", 1))
        .await
        .unwrap();
    let error = d
        .client
        .wait_for_event(
            &events[0],
            Duration::from_millis(10),
            Duration::from_millis(60),
        )
        .await
        .unwrap_err();
    let VppError::EventPending { event_id, last } = error else {
        panic!("expected EventPending, got {error}");
    };
    assert_eq!(event_id, events[0]);
    assert_eq!(last.event_status, EventState::Pending);
}

#[tokio::test]
async fn the_request_counter_matches_what_the_server_saw() {
    let d = District::new();
    d.sim.add_asset(KEYNOTE, 100);
    d.sim.set_page_size(1);
    d.sim.fail_next(2, 500, None);
    d.client.client_config().await.unwrap(); // 3 requests (2 retried 500s)
    d.client
        .associate(&[AssetRef::stdq(KEYNOTE)], &class("4A", 30))
        .await
        .unwrap(); // 1
    d.client
        .all_assignments(&AssignmentFilter::asset(KEYNOTE))
        .await
        .unwrap(); // 30 pages
    d.client.refresh_limits().await.unwrap(); // 1
    let _ = d
        .client
        .event_status(&tafel::vpp::EventId("nope".into()))
        .await; // 1, a 400
    assert_eq!(d.client.requests_made(), 3 + 1 + 30 + 1 + 1);
    assert_eq!(d.client.requests_made(), d.sim.request_log().len() as u64);
}
