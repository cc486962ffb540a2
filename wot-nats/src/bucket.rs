//! Opening the key-value buckets this crate uses.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

use crate::error::Error;

/// Creates the bucket `name` with one value per key, `max_age`, values of at most
/// `max_value_size` bytes and at most `max_bytes` in all (-1: no limit; past it, writes are
/// refused), or opens the one there and checks its max age.
pub(crate) async fn ensure_bucket(
    js: &jetstream::Context,
    name: &str,
    max_age: Duration,
    max_value_size: i32,
    max_bytes: i64,
) -> Result<kv::Store, Error> {
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !name_ok {
        return Err(Error::config(format!(
            "bucket name {:?} must be 1 to 64 letters, digits, `-` or `_`",
            name.chars().take(64).collect::<String>()
        )));
    }
    // The bucket's stream, as the NATS client's `create_key_value` makes it. (That function
    // first reads the account's JetStream info, whose 2.9 form the client no longer parses.)
    let config = stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        max_message_size: max_value_size,
        max_bytes,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        num_replicas: 1,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    let created = js.create_stream(config).await;
    let store = match js.get_key_value(name).await {
        Ok(store) => store,
        Err(open_error) => {
            return Err(match created {
                // It exists with other settings, or cannot be created: say why.
                Err(create_error) => {
                    Error::key_value_from(name, "cannot create or open it", create_error)
                }
                Ok(_) => Error::key_value_from(name, "cannot open it", open_error),
            });
        }
    };
    let found = store.stream.cached_info().config.max_age;
    if found != max_age {
        return Err(Error::key_value(
            name,
            format!("its max age is {found:?}, not {max_age:?}"),
        ));
    }
    Ok(store)
}
