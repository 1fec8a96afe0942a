//! How long tafel's own certificates have left, and how loudly to say so: a notice 60
//! days before one expires, a warning at 30, critical at 7. Read by `/readyz`
//! (degraded before, not ready once one has expired), the API, the log and
//! `tafel certs status`.

use chrono::{DateTime, Utc};
use openssl::x509::X509;
use serde::Serialize;

/// How close a certificate is to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// More than 60 days left.
    Ok,
    /// 60 days or less.
    Notice,
    /// 30 days or less.
    Warning,
    /// 7 days or less.
    Critical,
    /// Expired.
    Expired,
}

impl Level {
    /// The level with `days_left` days to go.
    pub fn of(days_left: i64) -> Level {
        match days_left {
            d if d < 0 => Level::Expired,
            0..=7 => Level::Critical,
            8..=30 => Level::Warning,
            31..=60 => Level::Notice,
            _ => Level::Ok,
        }
    }
}

/// One certificate's state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CertificateStatus {
    /// `root`, `issuing`, `scep_ra`, `server` or `signing`.
    pub name: String,
    /// Its subject, one line.
    pub subject: String,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// Whole days left (negative once expired).
    pub days_left: i64,
    /// How close it is.
    pub level: Level,
    /// What to do about it.
    pub action: String,
}

fn what_to_do(name: &str) -> &'static str {
    match name {
        "server" => "tafel certs renew server, then restart tafel",
        "signing" => "tafel certs renew signing, then restart tafel",
        "scep_ra" => "tafel certs renew ra, then restart tafel",
        "issuing" => "tafel certs renew issuing (needs the root key), then restart tafel",
        _ => "the root can only be replaced: every iPad enrolls again (plan it with the district)",
    }
}

/// The state of each certificate at `now`.
pub fn status(certs: &[(&'static str, X509)], now: DateTime<Utc>) -> Vec<CertificateStatus> {
    certs
        .iter()
        .filter_map(|(name, cert)| {
            let not_after = crate::mdm::identity::asn1_to_naive(cert.not_after())?.and_utc();
            // Whole days, rounded down: half a day past the end is expired.
            let days_left = (not_after - now).num_seconds().div_euclid(86_400);
            let subject = cert
                .subject_name()
                .entries()
                .filter_map(|e| e.data().to_string().ok())
                .collect::<Vec<_>>()
                .join(", ");
            Some(CertificateStatus {
                name: (*name).to_owned(),
                subject,
                not_after,
                days_left,
                level: Level::of(days_left),
                action: what_to_do(name).to_owned(),
            })
        })
        .collect()
}

/// Logs every certificate that needs attention (warn, error once critical or expired).
pub fn log(statuses: &[CertificateStatus]) {
    for s in statuses {
        match s.level {
            Level::Ok => {}
            Level::Notice | Level::Warning => tracing::warn!(
                certificate = %s.name, days_left = s.days_left, not_after = %s.not_after,
                action = %s.action, "certificate expires soon"
            ),
            Level::Critical | Level::Expired => tracing::error!(
                certificate = %s.name, days_left = s.days_left, not_after = %s.not_after,
                action = %s.action, "certificate expires within days or has expired"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_come_at_60_30_and_7_days() {
        assert_eq!(Level::of(61), Level::Ok);
        assert_eq!(Level::of(60), Level::Notice);
        assert_eq!(Level::of(31), Level::Notice);
        assert_eq!(Level::of(30), Level::Warning);
        assert_eq!(Level::of(8), Level::Warning);
        assert_eq!(Level::of(7), Level::Critical);
        assert_eq!(Level::of(0), Level::Critical);
        assert_eq!(Level::of(-1), Level::Expired);
    }

    #[test]
    fn a_clock_moved_past_each_certificate_sees_it_expired() {
        let root = crate::pki::CertificateAuthority::generate_root("root", 7300).unwrap();
        let issuing = root.issue_issuing_ca("issuing", 3650, &[], None).unwrap();
        let (server, _) = issuing
            .issue_server_cert(&["mdm.example".to_owned()], 825)
            .unwrap();
        let certs = vec![
            ("root", root.cert().to_owned()),
            ("issuing", issuing.cert().to_owned()),
            ("server", server),
        ];
        let now = Utc::now();
        assert!(status(&certs, now).iter().all(|s| s.level == Level::Ok));
        let soon = status(&certs, now + chrono::Duration::days(820));
        assert_eq!(soon[2].level, Level::Critical, "{soon:?}");
        assert_eq!(soon[1].level, Level::Ok);
        for (days, expired) in [(826, "server"), (3651, "issuing"), (7301, "root")] {
            let later = status(&certs, now + chrono::Duration::days(days));
            let s = later.iter().find(|s| s.name == expired).unwrap();
            assert_eq!(s.level, Level::Expired, "{days}: {s:?}");
            assert!(s.action.contains(match expired {
                "server" => "renew server",
                "issuing" => "renew issuing",
                _ => "enrolls again",
            }));
        }
    }
}
