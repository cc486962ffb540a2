//! Helpers shared by the integration tests.

/// A minimal valid TD (context, title, one `nosec` scheme) with `extra` members appended
/// after `security` (start it with a comma). Tests that check line and column rely on this
/// exact layout.
pub(crate) fn td(extra: &str) -> String {
    format!(
        r#"{{
  "@context": "https://www.w3.org/2022/wot/td/v1.1",
  "title": "T",
  "securityDefinitions": {{"nosec_sc": {{"scheme": "nosec"}}}},
  "security": "nosec_sc"{extra}
}}"#
    )
}
