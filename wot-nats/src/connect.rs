//! Connecting to NATS, with the URL's credentials kept out of errors and logs.

use std::time::Duration;

use crate::error::{Error, Repr};

/// The default limit on connecting to a NATS server, and on each JetStream request and
/// acknowledgement: 5 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to the NATS server(s) at `url` (`nats://host:port`, `host:port`, several joined
/// by `,`; user and password may be given in the URL), giving up after `timeout`.
///
/// After the first connection, the client reconnects by itself when the connection drops.
///
/// # Errors
///
/// [`ErrorKind::Connect`](crate::ErrorKind::Connect) when the URL does not parse, no server
/// answers, or the server refuses the credentials; [`ErrorKind::Timeout`](crate::ErrorKind::Timeout)
/// when it takes longer than `timeout`. The error names the URL without its user name,
/// password, query or fragment ([`redact_url`]).
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), wot_nats::Error> {
/// let client = wot_nats::connect("nats://127.0.0.1:4222", wot_nats::DEFAULT_TIMEOUT).await?;
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
pub async fn connect(url: &str, timeout: Duration) -> Result<async_nats::Client, Error> {
    let redacted = redact_url(url);
    let options = async_nats::ConnectOptions::new()
        .connection_timeout(timeout)
        .request_timeout(Some(timeout))
        .name("wot-nats");
    match tokio::time::timeout(timeout, options.connect(url)).await {
        Ok(Ok(client)) => {
            tracing::debug!(url = %redacted, "connected to NATS");
            Ok(client)
        }
        Ok(Err(e)) => {
            // The client's text ("IO error: Connection refused"), unless it quotes a part of
            // the URL's user info; then only the kind of failure. The client's error is not
            // kept as the source, for the same reason.
            let text = e.to_string();
            let reason = if secrets(url).any(|s| text.contains(s)) {
                e.kind().to_string()
            } else {
                text
            };
            Err(Error::new(Repr::Connect {
                url: redacted,
                reason,
            }))
        }
        Err(_) => Err(Error::new(Repr::Timeout {
            what: format!("connecting to NATS at {redacted}"),
            after: timeout,
        })),
    }
}

/// The user names, passwords and tokens in the user info of `url`'s servers.
fn secrets(url: &str) -> impl Iterator<Item = &str> {
    url.split(',')
        .filter_map(|one| {
            let rest = one.split_once("://").map_or(one, |(_, rest)| rest);
            let authority = rest.split('/').next().unwrap_or_default();
            authority.rsplit_once('@').map(|(info, _)| info)
        })
        .flat_map(|info| info.split(':'))
        .filter(|s| !s.is_empty())
}

/// `url` (one or more NATS server URLs joined by `,`) without user name, password, query or
/// fragment, for messages and logs.
///
/// # Examples
///
/// ```
/// assert_eq!(
///     wot_nats::redact_url("nats://collector:s3cret@10.0.0.5:4222?x=1,tls://tok@h2"),
///     "nats://10.0.0.5:4222,tls://h2"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|one| {
            let one = one.trim();
            let end = one.find(['?', '#']).unwrap_or(one.len());
            let one = &one[..end];
            let (scheme, rest) = match one.find("://") {
                Some(at) => one.split_at(at + 3),
                None => ("", one),
            };
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let host = authority.rsplit('@').next().unwrap_or_default();
            format!("{scheme}{host}{path}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_removed() {
        assert_eq!(redact_url("u:p@h:1"), "h:1");
        assert_eq!(redact_url("nats://h"), "nats://h");
        assert_eq!(redact_url("nats://a@b@h/x#f"), "nats://h/x");
        let found: Vec<&str> = secrets("nats://u:p@h,tok@h2,nats://h3").collect();
        assert_eq!(found, ["u", "p", "tok"]);
    }
}
