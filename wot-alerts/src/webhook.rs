//! The webhook body: the Prometheus Alertmanager webhook payload, version 4, so that existing
//! receivers accept it. Each notification is sent as a group of one alert, with one field
//! added: `notificationId`, the notification's id (also sent as the `Idempotency-Key` header),
//! the same for every attempt and after a restart, so that a receiver can drop a repeat.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use crate::engine::Notification;
use crate::rule::NotificationKind;

/// Alertmanager's "zero time", sent as `endsAt` of alerts that have not ended.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookPayload<'a> {
    version: &'static str,
    notification_id: String,
    group_key: String,
    truncated_alerts: u64,
    status: &'static str,
    receiver: &'a str,
    group_labels: BTreeMap<&'static str, &'a str>,
    common_labels: &'a BTreeMap<String, String>,
    common_annotations: BTreeMap<&'static str, String>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    alerts: [WebhookAlert<'a>; 1],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert<'a> {
    status: &'static str,
    labels: &'a BTreeMap<String, String>,
    annotations: BTreeMap<&'static str, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: String,
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl<'a> WebhookPayload<'a> {
    pub(crate) fn new(n: &'a Notification, receiver: &'a str, external_url: &'a str) -> Self {
        let a = &n.alert;
        let status = if n.kind == NotificationKind::Resolved {
            "resolved"
        } else {
            "firing"
        };
        let mut annotations = BTreeMap::from([
            ("summary", a.summary.clone()),
            ("notification", n.kind.to_string()),
        ]);
        if let Some(v) = &a.value {
            annotations.insert("value", crate::template::bounded_json(v));
        }
        if let Some(u) = &n.unit {
            annotations.insert("unit", u.clone());
        }
        if let Some(ack) = &a.acknowledgement {
            annotations.insert("acknowledged_by", ack.by.clone());
            if let Some(c) = &ack.comment {
                annotations.insert("acknowledgement_comment", c.clone());
            }
        }
        let group_labels =
            BTreeMap::from([("alertname", a.rule.as_str()), ("thing", a.thing.as_str())]);
        let group_key = format!("{{}}:{{alertname={:?}, thing={:?}}}", a.rule, a.thing);
        WebhookPayload {
            version: "4",
            notification_id: n.id.to_string(),
            group_key,
            truncated_alerts: 0,
            status,
            receiver,
            group_labels,
            common_labels: &a.labels,
            common_annotations: annotations.clone(),
            external_url,
            alerts: [WebhookAlert {
                status,
                labels: &a.labels,
                annotations,
                starts_at: rfc3339(a.fired_at.unwrap_or(a.active_since)),
                ends_at: a.resolved_at.map_or_else(|| ZERO_TIME.to_owned(), rfc3339),
                generator_url: "",
                fingerprint: fingerprint(&a.labels),
            }],
        }
    }
}

/// 64-bit FNV-1a over the sorted label pairs, as 16 hex digits: stable for equal label sets.
fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for (k, v) in labels {
        for byte in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("{hash:016x}")
}
