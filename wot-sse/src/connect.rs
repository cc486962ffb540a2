//! One connection attempt: token, request, redirects, and the checks on the response.

use std::time::{Duration, SystemTime};

use http::header::{
    ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue,
    LOCATION, RETRY_AFTER,
};
use http::{Method, StatusCode};

use crate::client::{Auth, Secret, Spec, is_credential_header, redact_url};
use crate::error::{ConnectFailure, Error, Kind};

const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// What a successful attempt got.
pub(crate) enum Opened {
    /// 200 with `text/event-stream`: read the body.
    Stream(reqwest::Response),
    /// 204: the server wants the client to stop.
    NoContent,
}

/// Makes one connection attempt, following redirects.
pub(crate) async fn open(spec: Spec, last_event_id: Option<HeaderValue>) -> Result<Opened, Error> {
    let settings = &spec.settings;
    let http = spec.http()?;
    let first_url = spec.url();
    let mut url_for_logs = redact_url(first_url);
    let token = match &settings.auth {
        Auth::None => None,
        Auth::Bearer(token) => Some(token.clone()),
        Auth::Provider(provider) => Some(provider().await.map_err(|source| {
            Error::with_boxed_source(Kind::Token, Some(url_for_logs.clone()), source)
        })?),
    };
    let mut url = first_url.clone();
    let mut method = spec.method().clone();
    let mut body = settings.body.clone();
    let mut same_origin = true;
    let mut redirects = 0;
    loop {
        let mut request_url = url.clone();
        let mut headers = HeaderMap::with_capacity(settings.headers.len() + 4);
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        for (name, value) in &settings.headers {
            // Credentials stay with the origin the user gave them for.
            if same_origin || !is_credential_header(name, value) {
                headers.insert(name.clone(), value.clone());
            }
        }
        if let Some(id) = &last_event_id {
            headers.insert(LAST_EVENT_ID, id.clone());
        }
        if let (Some(Secret(token)), true) = (&token, same_origin) {
            match &settings.token_query_param {
                Some(param) => {
                    request_url.query_pairs_mut().append_pair(param, token);
                }
                None => {
                    let mut value =
                        HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
                            Error::builder("the token contains characters not allowed in a header")
                        })?;
                    value.set_sensitive(true);
                    headers.insert(AUTHORIZATION, value);
                }
            }
        }
        let mut request = http.request(method.clone(), request_url).headers(headers);
        if let Some(body) = &body {
            request = request.body(body.clone());
        }
        let response = request.send().await.map_err(|source| {
            // reqwest's text would include the URL, and with it a token in the query.
            let failure = ConnectFailure::of(&source);
            Error::with_source(
                Kind::Connect(failure),
                Some(url_for_logs.clone()),
                source.without_url(),
            )
        })?;
        let status = response.status();
        if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            let Some(location) = response.headers().get(LOCATION).filter(|l| !l.is_empty()) else {
                return Err(Error::new(
                    Kind::RedirectWithoutLocation(status),
                    Some(url_for_logs),
                ));
            };
            let next = location
                .to_str()
                .ok()
                .and_then(|location| url.join(location).ok())
                .filter(|next| matches!(next.scheme(), "http" | "https"))
                .ok_or_else(|| Error::new(Kind::BadRedirectLocation, Some(url_for_logs.clone())))?;
            redirects += 1;
            if redirects > settings.max_redirects {
                return Err(Error::new(
                    Kind::TooManyRedirects(settings.max_redirects),
                    Some(url_for_logs),
                ));
            }
            if next.origin() != first_url.origin() {
                same_origin = false;
            }
            // As fetch does: 303, and 301/302 after POST, continue as GET without a body.
            if status == StatusCode::SEE_OTHER
                || (method == Method::POST && matches!(status.as_u16(), 301 | 302))
            {
                method = Method::GET;
                body = None;
            }
            url_for_logs = redact_url(&next);
            tracing::debug!(%status, to = %url_for_logs, "following redirect");
            url = next;
            continue;
        }
        if status == StatusCode::NO_CONTENT {
            return Ok(Opened::NoContent);
        }
        if status != StatusCode::OK {
            let retry_after = matches!(status.as_u16(), 429 | 503)
                .then(|| {
                    response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(parse_retry_after)
                })
                .flatten();
            return Err(Error::status_with_retry_after(
                status,
                Some(url_for_logs),
                retry_after,
            ));
        }
        let content_type = response.headers().get(CONTENT_TYPE);
        if !content_type.is_some_and(is_event_stream) {
            let found =
                content_type.map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
            return Err(Error::new(Kind::ContentType(found), Some(url_for_logs)));
        }
        return Ok(Opened::Stream(response));
    }
}

/// `text/event-stream`, any case, parameters allowed.
fn is_event_stream(value: &HeaderValue) -> bool {
    // The text before the first `;` (`split` yields it even when there is none).
    value
        .as_bytes()
        .split(|&b| b == b';')
        .next()
        .is_some_and(|essence| {
            essence
                .trim_ascii()
                .eq_ignore_ascii_case(b"text/event-stream")
        })
}

/// Reads a `Retry-After` header value: delta-seconds or an HTTP date (a date in the past is
/// zero). `None` for anything else.
///
/// Seconds saturate: any number of digits is read, and one past `u64::MAX` is `u64::MAX`
/// seconds. Nothing here adds the result to a clock; [`ReconnectPolicy`](crate::ReconnectPolicy)
/// caps it at `max_retry_after` before waiting.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use wot_sse::{HeaderValue, parse_retry_after};
///
/// let huge = HeaderValue::from_static("99999999999999999999999999");
/// assert_eq!(parse_retry_after(&huge), Some(Duration::from_secs(u64::MAX)));
/// assert_eq!(parse_retry_after(&HeaderValue::from_static("soon")), None);
/// ```
pub fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = text.bytes().fold(0u64, |acc, digit| {
            acc.saturating_mul(10)
                .saturating_add(u64::from(digit - b'0'))
        });
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_check() {
        for ok in [
            "text/event-stream",
            "Text/Event-Stream",
            "text/event-stream; charset=utf-8",
            " text/event-stream ;x=y",
        ] {
            assert!(is_event_stream(&HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in ["text/plain", "text/event-streams", "application/json", ""] {
            assert!(!is_event_stream(&HeaderValue::from_static(bad)), "{bad}");
        }
    }

    #[test]
    fn retry_after_forms() {
        let secs = HeaderValue::from_static("120");
        assert_eq!(parse_retry_after(&secs), Some(Duration::from_secs(120)));
        let past = HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(100));
        let delay = parse_retry_after(&HeaderValue::try_from(future).unwrap()).unwrap();
        assert!(delay > Duration::from_secs(90) && delay <= Duration::from_secs(100));
        assert_eq!(parse_retry_after(&HeaderValue::from_static("soon")), None);
        assert_eq!(parse_retry_after(&HeaderValue::from_static("-5")), None);
        for huge in ["18446744073709551616", "99999999999999999999999"] {
            let value = HeaderValue::from_static(huge);
            assert_eq!(
                parse_retry_after(&value),
                Some(Duration::from_secs(u64::MAX))
            );
        }
        let far = HeaderValue::from_static("Fri, 31 Dec 9999 23:59:59 GMT");
        assert!(parse_retry_after(&far).is_some_and(|d| d > Duration::from_secs(1 << 37)));
    }
}
