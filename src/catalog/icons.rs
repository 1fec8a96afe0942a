//! App icons for the console. When an app with an App Store id enters the catalog,
//! tafel asks the App Store's public lookup for its artwork once and keeps the image
//! (`app_icons`, per App Store id), so that pages show it from tafel itself — no page
//! loads anything from another host. Where the lookup fails (offline, an app Apple no
//! longer sells) the console shows the app's first letter instead.

use std::sync::OnceLock;
use std::time::Duration;

use diesel::prelude::*;

use crate::config::AppStoreSettings;
use crate::db::schema::app_icons;
use crate::db::DbConn;

/// Largest icon kept.
const MAX_BYTES: usize = 512 * 1024;
/// Largest lookup answer read.
const MAX_LOOKUP_BYTES: usize = 256 * 1024;

/// Why no icon was fetched.
#[derive(Debug, thiserror::Error)]
pub enum IconError {
    /// The network or Apple's server.
    #[error("App Store lookup: {0}")]
    Http(#[from] reqwest::Error),
    /// An answer that is not what Apple documents.
    #[error("App Store lookup: {0}")]
    Answer(String),
}

/// One HTTP client for every lookup (connections reused).
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default()
    })
}

/// Reads a body up to `max` bytes; more is an error.
async fn read_limited(mut res: reqwest::Response, max: usize) -> Result<Vec<u8>, IconError> {
    let mut out = Vec::new();
    while let Some(chunk) = res.chunk().await? {
        if out.len() + chunk.len() > max {
            return Err(IconError::Answer(format!("more than {max} bytes")));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The artwork URL in a lookup answer (`results[0].artworkUrl512`, else `…100`, `…60`).
fn artwork_url(answer: &serde_json::Value) -> Option<String> {
    let app = answer.get("results")?.as_array()?.first()?;
    ["artworkUrl512", "artworkUrl100", "artworkUrl60"]
        .iter()
        .find_map(|k| app.get(*k)?.as_str())
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(str::to_owned)
}

/// The icon of the App Store app `adam_id`: (content type, image).
pub async fn fetch(s: &AppStoreSettings, adam_id: &str) -> Result<(String, Vec<u8>), IconError> {
    if adam_id.is_empty() || !adam_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IconError::Answer(format!("{adam_id:?} is no App Store id")));
    }
    let url = format!("{}/lookup", s.base_url.trim_end_matches('/'));
    let res = client()
        .get(&url)
        .query(&[("id", adam_id), ("country", s.country.as_str())])
        .send()
        .await?
        .error_for_status()?;
    let answer: serde_json::Value =
        serde_json::from_slice(&read_limited(res, MAX_LOOKUP_BYTES).await?)
            .map_err(|e| IconError::Answer(format!("not JSON: {e}")))?;
    let art = artwork_url(&answer)
        .ok_or_else(|| IconError::Answer(format!("no app {adam_id} with artwork")))?;
    let res = client().get(&art).send().await?.error_for_status()?;
    let kind = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !matches!(kind.as_str(), "image/png" | "image/jpeg") {
        return Err(IconError::Answer(format!("artwork of type {kind:?}")));
    }
    let data = read_limited(res, MAX_BYTES).await?;
    // What it says it is: PNG or JPEG magic.
    let magic_ok = match kind.as_str() {
        "image/png" => data.starts_with(b"\x89PNG\r\n\x1a\n"),
        _ => data.starts_with(&[0xFF, 0xD8, 0xFF]),
    };
    if !magic_ok {
        return Err(IconError::Answer(format!("artwork is not {kind}")));
    }
    Ok((kind, data))
}

/// Stores (or replaces) the icon of `adam_id`.
pub fn store(conn: &mut DbConn, adam_id: &str, kind: &str, data: &[u8]) -> QueryResult<()> {
    crate::with_backend!(conn, |c| {
        diesel::insert_into(app_icons::table)
            .values((
                app_icons::adam_id.eq(adam_id),
                app_icons::content_type.eq(kind),
                app_icons::data.eq(data),
                app_icons::fetched_at.eq(crate::db::now()),
            ))
            .on_conflict(app_icons::adam_id)
            .do_update()
            .set((
                app_icons::content_type.eq(kind),
                app_icons::data.eq(data),
                app_icons::fetched_at.eq(crate::db::now()),
            ))
            .execute(c)
    })
    .map(|_| ())
}

/// The icon of `adam_id`: (content type, image).
pub fn icon(conn: &mut DbConn, adam_id: &str) -> QueryResult<Option<(String, Vec<u8>)>> {
    app_icons::table
        .find(adam_id)
        .select((app_icons::content_type, app_icons::data))
        .first(conn)
        .optional()
}

/// Which of `adam_ids` have an icon.
pub fn with_icons(
    conn: &mut DbConn,
    adam_ids: &[String],
) -> QueryResult<std::collections::HashSet<String>> {
    Ok(app_icons::table
        .filter(app_icons::adam_id.eq_any(adam_ids))
        .select(app_icons::adam_id)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// Fetches the icon of `adam_id` in the background, unless it is there or icons are
/// off; a failure is logged and the console shows the app's letter.
pub fn fetch_later(state: &crate::state::AppState, adam_id: String) {
    let s = state.settings.app_store.clone();
    if !s.icons {
        return;
    }
    let db = state.db.clone();
    tokio::spawn(async move {
        let id = adam_id.clone();
        let known = db
            .run(move |conn| -> Result<bool, crate::error::ApiError> {
                Ok(icon(conn, &id)?.is_some())
            })
            .await
            .unwrap_or(false);
        if known {
            return;
        }
        match fetch(&s, &adam_id).await {
            Ok((kind, data)) => {
                let id = adam_id.clone();
                let stored = db
                    .run(move |conn| -> Result<(), crate::error::ApiError> {
                        Ok(store(conn, &id, &kind, &data)?)
                    })
                    .await;
                if let Err(e) = stored {
                    tracing::warn!(adam_id = %adam_id, "storing the app icon: {e}");
                }
            }
            Err(e) => tracing::info!(adam_id = %adam_id, "no app icon: {e}"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_artwork_of_the_first_result_is_taken() {
        let answer = serde_json::json!({"resultCount": 1, "results": [{
            "trackName": "Keynote",
            "artworkUrl60": "https://is1-ssl.mzstatic.com/60.png",
            "artworkUrl512": "https://is1-ssl.mzstatic.com/512.png"
        }]});
        assert_eq!(
            artwork_url(&answer).as_deref(),
            Some("https://is1-ssl.mzstatic.com/512.png")
        );
        let none = serde_json::json!({"resultCount": 0, "results": []});
        assert_eq!(artwork_url(&none), None);
        let odd = serde_json::json!({"results": [{"artworkUrl100": "file:///etc/passwd"}]});
        assert_eq!(artwork_url(&odd), None, "only http(s) artwork is fetched");
    }
}
