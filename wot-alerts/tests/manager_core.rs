//! The manager without HTTP actions (`--no-default-features --features manager`) and with them.

use std::time::Duration;

use wot_alerts::{AlertManager, ErrorKind, Format, PropertyUpdate, RuleSet};

fn webhook_rules() -> RuleSet {
    RuleSet::from_str(
        "rules: [{ id: hot, thing: '*', property: t, condition: { gt: 1 }, actions: [ops] }]\n\
         actions:\n  ops: { type: webhook, url: \"http://127.0.0.1:9/hook\" }\n",
        Format::Yaml,
        "test.yaml",
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn http_actions_need_their_feature() {
    let started = AlertManager::builder(webhook_rules())
        .start(futures_util::stream::empty::<PropertyUpdate>());
    if cfg!(feature = "http-actions") {
        let manager = started.unwrap();
        assert!(manager.shutdown(Duration::from_secs(1)).await.is_empty());
    } else {
        let error = started.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        assert!(error.to_string().contains("http-actions"), "{error}");
    }
}
