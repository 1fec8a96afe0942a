//! Accessibility checks with axe-core in the page: BITV 2.0 asks for WCAG 2.1 AA.
//!
//! `axe.min.js` is axe-core 4.14.1 (MPL-2.0, © Deque Systems; license header kept),
//! unchanged from the npm package `axe-core@4.14.1` (`npm pack axe-core@4`, file
//! `package/axe.min.js`, sha256 29348999…9ed95c). To update: the same command with the
//! new version, and this line.

use serde::Deserialize;
use serde_json::Value;

use super::Browser;

/// axe-core, injected into pages that do not have it yet.
const AXE_JS: &str = include_str!("axe.min.js");

/// The WCAG 2.0 and 2.1 rules at levels A and AA (axe's tags).
const TAGS: [&str; 4] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/// Runs axe on the whole document and hands the violations, trimmed to what a report
/// needs, to WebDriver's callback. A shadow-DOM or frame target is a list of selectors.
const RUN_AXE: &str = r"
const done = arguments[arguments.length - 1];
axe.run(document, { runOnly: { type: 'tag', values: arguments[0] } })
  .then(r => done({ violations: r.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({
      target: n.target.map(t => Array.isArray(t) ? t.join(' >>> ') : String(t)),
      html: n.html,
    })),
  })) }))
  .catch(e => done({ error: String(e) }));
";

/// A rule the page breaks.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    /// axe's rule id, e.g. `color-contrast`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: Option<String>,
    /// What the rule asks for.
    pub help: String,
    /// Deque's page on the rule.
    pub help_url: String,
    /// The elements that break it.
    pub nodes: Vec<ViolationNode>,
}

/// One element that breaks a rule.
#[derive(Debug, Deserialize)]
pub struct ViolationNode {
    /// CSS selectors to the element (more than one through frames or shadow roots).
    pub target: Vec<String>,
    /// The element's opening HTML.
    pub html: String,
}

impl Violation {
    /// Serious or critical: what the console must not have.
    pub fn is_serious(&self) -> bool {
        matches!(self.impact.as_deref(), Some("serious" | "critical"))
    }
}

impl Browser {
    /// Runs axe-core's WCAG 2.0/2.1 A and AA rules on the current page.
    pub async fn axe(&self) -> Vec<Violation> {
        let present = self
            .execute("return typeof window.axe === 'object';", &[])
            .await;
        if present != Value::Bool(true) {
            self.execute(AXE_JS, &[]).await;
        }
        let result = self
            .execute_async(RUN_AXE, &[serde_json::json!(TAGS)])
            .await;
        assert!(
            result["error"].is_null(),
            "axe-core failed on {}: {}",
            self.current_url().await,
            result["error"]
        );
        serde_json::from_value(result["violations"].clone()).expect("axe's violations")
    }

    /// Panics, listing each one, if the current page has a serious or critical
    /// violation of WCAG 2.1 A/AA; `page` names it in the message.
    pub async fn assert_accessible(&self, page: &str) {
        let bad: Vec<String> = self
            .axe()
            .await
            .iter()
            .filter(|v| v.is_serious())
            .map(|v| {
                let targets: Vec<&str> = v
                    .nodes
                    .iter()
                    .take(3)
                    .flat_map(|n| n.target.iter().map(String::as_str))
                    .collect();
                let first = v.nodes.first().map_or("", |n| n.html.as_str());
                format!(
                    "  - {} ({}): {} [{} element(s): {}; first: {first}] {}",
                    v.id,
                    v.impact.as_deref().unwrap_or("?"),
                    v.help,
                    v.nodes.len(),
                    targets.join(", "),
                    v.help_url
                )
            })
            .collect();
        assert!(
            bad.is_empty(),
            "{page} ({}) breaks WCAG 2.1 AA (axe-core, serious or critical):\n{}",
            self.current_url().await,
            bad.join("\n")
        );
    }
}
