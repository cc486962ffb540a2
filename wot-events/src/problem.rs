//! RFC 7807 / RFC 9457 problem details, as servers put them in error responses.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The problem details of an error response (`application/problem+json`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProblemDetails {
    /// A URI identifying the problem type (`about:blank` when absent).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<String>,
    /// A short summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The HTTP status the server meant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// An explanation of this occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// A URI identifying this occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Any other members.
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

impl ProblemDetails {
    /// Parses problem details from a response body.
    ///
    /// Accepts `application/problem+json`, and also a plain JSON object that has at least
    /// one of `title` or `detail` (many servers send problem details as `application/json`).
    /// Returns `None` for anything else, including members of the wrong type.
    ///
    /// # Examples
    ///
    /// ```
    /// use wot_events::ProblemDetails;
    ///
    /// let body = br#"{"type": "https://example.com/probs/range", "title": "Out of range",
    ///                 "status": 400, "detail": "brightness must be <= 100", "max": 100}"#;
    /// let p = ProblemDetails::parse(Some("application/problem+json"), body).unwrap();
    /// assert_eq!(p.detail.as_deref(), Some("brightness must be <= 100"));
    /// assert_eq!(p.extensions["max"], 100);
    /// ```
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Option<Self> {
        let media = content_type
            .and_then(|c| c.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase());
        let is_problem = media.as_deref() == Some("application/problem+json");
        let is_json = is_problem
            || media
                .as_deref()
                .is_some_and(|m| m == "application/json" || m.ends_with("+json"));
        if !is_json {
            return None;
        }
        let p: ProblemDetails = serde_json::from_slice(body).ok()?;
        (is_problem || p.title.is_some() || p.detail.is_some()).then_some(p)
    }
}

impl fmt::Display for ProblemDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(t) = &self.title {
            parts.push(t.clone());
        }
        if let Some(d) = &self.detail {
            parts.push(d.clone());
        }
        if let Some(t) = &self.problem_type {
            parts.push(format!("type {t}"));
        }
        if parts.is_empty() {
            f.write_str("(problem details without title or detail)")
        } else {
            f.write_str(&parts.join(": "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_problem_json_and_plain_json_with_title() {
        let p = ProblemDetails::parse(
            Some("application/problem+json; charset=utf-8"),
            br#"{"title": "Busy", "status": 503}"#,
        )
        .unwrap();
        assert_eq!(p.status, Some(503));
        assert_eq!(p.to_string(), "Busy");
        let p = ProblemDetails::parse(Some("application/json"), br#"{"detail": "no"}"#).unwrap();
        assert_eq!(p.detail.as_deref(), Some("no"));
        assert!(ProblemDetails::parse(Some("application/json"), br#"{"value": 1}"#).is_none());
        assert!(ProblemDetails::parse(Some("text/plain"), br#"{"title": "x"}"#).is_none());
        assert!(ProblemDetails::parse(None, br#"{"title": "x"}"#).is_none());
        assert!(ProblemDetails::parse(Some("application/problem+json"), b"not json").is_none());
        assert!(
            ProblemDetails::parse(Some("application/problem+json"), br#"{"status": "x"}"#)
                .is_none()
        );
        let p = ProblemDetails::parse(Some("application/problem+json"), b"{}").unwrap();
        assert!(p.to_string().contains("without"));
    }
}
