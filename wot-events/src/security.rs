//! From a form's effective security schemes and the user's credentials to request headers.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use wot_td::{SecurityIn, SecurityScheme, Thing};

use crate::error::{Error, Repr};

/// One credential. Its `Debug` output never shows the secret.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential {
    /// For `bearer`: the token, sent as `Authorization: Bearer <token>`.
    Bearer(String),
    /// For `basic`: user name and password.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// For `apikey`: the key, sent in the header, cookie (or, on opt-in, query parameter) the
    /// scheme names.
    ApiKey(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Credential::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            Credential::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
        }
    }
}

impl Credential {
    fn kind(&self) -> &'static str {
        match self {
            Credential::Bearer(_) => "bearer",
            Credential::Basic { .. } => "basic",
            Credential::ApiKey(_) => "apikey",
        }
    }
}

/// The credentials the user supplies: per Thing id, and per security scheme name (the key
/// in `securityDefinitions`). For a scheme, a credential of the right kind given for the
/// Thing wins over one given for the scheme name.
///
/// # Examples
///
/// ```
/// use wot_events::{Credential, Credentials};
///
/// let creds = Credentials::new()
///     .for_thing("urn:dev:lamp", Credential::Bearer("t0k3n".into()))
///     .for_scheme("basic_sc", Credential::Basic { user: "admin".into(), password: "pw".into() });
/// assert!(!format!("{creds:?}").contains("t0k3n"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    by_thing: HashMap<String, Vec<Credential>>,
    by_scheme: HashMap<String, Credential>,
    query_allowed: bool,
}

impl Credentials {
    /// No credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a credential for the Thing with this id (several of different kinds may be
    /// given).
    #[must_use]
    pub fn for_thing(mut self, thing_id: impl Into<String>, credential: Credential) -> Self {
        self.by_thing
            .entry(thing_id.into())
            .or_default()
            .push(credential);
        self
    }

    /// Sets the credential for every scheme with this name in `securityDefinitions`.
    #[must_use]
    pub fn for_scheme(mut self, scheme_name: impl Into<String>, credential: Credential) -> Self {
        self.by_scheme.insert(scheme_name.into(), credential);
        self
    }

    /// Allows API keys in the URL query when a TD asks for `"in": "query"` (default: not
    /// allowed, and such a scheme is an error). Keys in URLs end up in server and proxy
    /// logs: enable only for servers that demand it.
    #[must_use]
    pub fn allow_query_keys(mut self, allow: bool) -> Self {
        self.query_allowed = allow;
        self
    }

    fn find(&self, thing_id: &str, name: &str, kind: &str) -> Option<&Credential> {
        self.by_thing
            .get(thing_id)
            .and_then(|v| v.iter().find(|c| c.kind() == kind))
            .or_else(|| self.by_scheme.get(name).filter(|c| c.kind() == kind))
    }
}

/// Headers and query parameters to add to a request.
#[derive(Clone, Default)]
pub(crate) struct Auth {
    pub(crate) headers: HeaderMap,
    pub(crate) query: Vec<(String, String)>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field(
                "query",
                &self.query.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Auth {
    /// Whether any credential is attached.
    pub(crate) fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.query.is_empty()
    }

    /// `url` with the credential query parameters appended (those not already present).
    pub(crate) fn apply(&self, url: &url::Url) -> url::Url {
        let mut url = url.clone();
        let missing: Vec<_> = self
            .query
            .iter()
            .filter(|(k, v)| !url.query_pairs().any(|(qk, qv)| qk == *k && qv == *v))
            .collect();
        if !missing.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in missing {
                q.append_pair(k, v);
            }
        }
        url
    }
}

/// Builds the headers for the security schemes of one form (all of them must be satisfied).
pub(crate) fn authorize(
    thing: &Thing,
    thing_id: &str,
    schemes: &[(&str, &SecurityScheme)],
    creds: &Credentials,
) -> Result<Auth, Error> {
    let mut auth = Auth::default();
    for (name, scheme) in schemes {
        add_scheme(thing, thing_id, name, scheme, creds, &mut auth, 0)?;
    }
    Ok(auth)
}

fn add_scheme(
    thing: &Thing,
    thing_id: &str,
    name: &str,
    scheme: &SecurityScheme,
    creds: &Credentials,
    auth: &mut Auth,
    depth: usize,
) -> Result<(), Error> {
    let fail = |reason: String| {
        Error::from(Repr::Security {
            thing: thing_id.to_owned(),
            name: name.to_owned(),
            scheme: scheme.scheme().to_owned(),
            reason,
        })
    };
    let need = |kind: &str| {
        creds.find(thing_id, name, kind).ok_or_else(|| {
            fail(format!(
                "no {kind} credential given for this Thing or scheme name"
            ))
        })
    };
    match scheme {
        SecurityScheme::NoSec(_) => Ok(()),
        SecurityScheme::Basic(_) | SecurityScheme::Bearer(_) => {
            if scheme.location() != Some(SecurityIn::Header) {
                return Err(fail(format!(
                    "credentials `in` {:?} are not supported, only `header`",
                    scheme.location()
                )));
            }
            let value = match need(scheme.scheme())? {
                Credential::Basic { user, password } => {
                    basic_value(user, password).map_err(|_| fail("invalid characters".into()))?
                }
                Credential::Bearer(token) => sensitive(&format!("Bearer {token}"))
                    .map_err(|_| fail("token has invalid characters".into()))?,
                Credential::ApiKey(_) => return Err(fail("wrong credential kind".into())),
            };
            let header_name = match scheme.name() {
                Some(n) => {
                    HeaderName::try_from(n).map_err(|_| fail(format!("bad header name `{n}`")))?
                }
                None => header::AUTHORIZATION,
            };
            auth.headers.insert(header_name, value);
            Ok(())
        }
        SecurityScheme::ApiKey(_) => {
            let Credential::ApiKey(key) = need("apikey")? else {
                return Err(fail("wrong credential kind".into()));
            };
            let param = scheme.name().unwrap_or("X-API-Key");
            match scheme.location() {
                Some(SecurityIn::Header) => {
                    let n = HeaderName::try_from(param)
                        .map_err(|_| fail(format!("bad header name `{param}`")))?;
                    let v =
                        sensitive(key).map_err(|_| fail("key has invalid characters".into()))?;
                    auth.headers.insert(n, v);
                    Ok(())
                }
                Some(SecurityIn::Query) if creds.query_allowed => {
                    auth.query.push((param.to_owned(), key.clone()));
                    Ok(())
                }
                Some(SecurityIn::Query) => Err(fail(
                    "the key goes in the URL query, which is off by default; \
                     enable Credentials::allow_query_keys to send it"
                        .into(),
                )),
                Some(SecurityIn::Cookie) => {
                    let is_token = |s: &str| {
                        !s.is_empty()
                            && s.bytes().all(|b| {
                                b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'=' | b'"')
                            })
                    };
                    if !is_token(param) {
                        return Err(fail(format!("bad cookie name `{param}`")));
                    }
                    if !key
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"'))
                    {
                        return Err(fail("key has characters not allowed in a cookie".into()));
                    }
                    let pair = format!("{param}={key}");
                    let value = match auth.headers.get(header::COOKIE) {
                        Some(existing) => {
                            let mut joined = existing.as_bytes().to_vec();
                            joined.extend_from_slice(b"; ");
                            joined.extend_from_slice(pair.as_bytes());
                            HeaderValue::from_bytes(&joined).map(|mut v| {
                                v.set_sensitive(true);
                                v
                            })
                        }
                        None => sensitive(&pair),
                    }
                    .map_err(|_| fail("key has characters not allowed in a cookie".into()))?;
                    auth.headers.insert(header::COOKIE, value);
                    Ok(())
                }
                other => Err(fail(format!("apikey `in` {other:?} is not supported"))),
            }
        }
        SecurityScheme::Combo(c) => {
            if depth > 8 {
                return Err(fail("combo schemes nest too deeply".into()));
            }
            let lookup = |n: &str| {
                thing
                    .security_scheme(n)
                    .ok_or_else(|| fail(format!("combo names undefined scheme `{n}`")))
            };
            if let Some(all) = &c.all_of {
                for n in all {
                    let s = lookup(n)?;
                    add_scheme(thing, thing_id, n, s, creds, auth, depth + 1)?;
                }
                return Ok(());
            }
            let mut reasons = Vec::new();
            for n in c.one_of.iter().flatten() {
                let s = lookup(n)?;
                let mut trial = auth.clone();
                match add_scheme(thing, thing_id, n, s, creds, &mut trial, depth + 1) {
                    Ok(()) => {
                        *auth = trial;
                        return Ok(());
                    }
                    Err(e) => reasons.push(e.to_string()),
                }
            }
            Err(fail(format!(
                "no alternative of oneOf works: {}",
                reasons.join("; ")
            )))
        }
        other => Err(fail(format!(
            "scheme `{}` is not supported (supported: nosec, basic, bearer, apikey, combo)",
            other.scheme()
        ))),
    }
}

fn sensitive(s: &str) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    let mut v = HeaderValue::from_str(s)?;
    v.set_sensitive(true);
    Ok(v)
}

fn basic_value(
    user: &str,
    password: &str,
) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    sensitive(&format!(
        "Basic {}",
        STANDARD.encode(format!("{user}:{password}"))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A Thing secured by `security`, one of the schemes in `defs`.
    fn thing(security: &str, defs: serde_json::Value) -> Thing {
        let members = json!({"securityDefinitions": defs, "security": security});
        crate::thing::test_thing(members).thing().clone()
    }

    fn run(t: &Thing, creds: &Credentials) -> Result<Auth, Error> {
        let schemes: Vec<_> = t
            .security
            .iter()
            .filter_map(|n| t.security_scheme(n).map(|s| (n.as_str(), s)))
            .collect();
        authorize(t, "urn:t", &schemes, creds)
    }

    #[test]
    fn nosec_basic_bearer_apikey() {
        let t = thing("n", json!({"n": {"scheme": "nosec"}}));
        assert!(run(&t, &Credentials::new()).unwrap().headers.is_empty());

        let t = thing("b", json!({"b": {"scheme": "basic"}}));
        let c = Credentials::new().for_scheme(
            "b",
            Credential::Basic {
                user: "Aladdin".into(),
                password: "open sesame".into(),
            },
        );
        let a = run(&t, &c).unwrap();
        assert_eq!(
            a.headers[header::AUTHORIZATION],
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert!(a.headers[header::AUTHORIZATION].is_sensitive());

        let t = thing("tok", json!({"tok": {"scheme": "bearer"}}));
        let c = Credentials::new().for_thing("urn:t", Credential::Bearer("abc".into()));
        assert_eq!(
            run(&t, &c).unwrap().headers[header::AUTHORIZATION],
            "Bearer abc"
        );
        let err = run(&t, &Credentials::new()).unwrap_err().to_string();
        assert!(err.contains("`tok`") && err.contains("bearer"), "{err}");

        let t = thing(
            "k",
            json!({"k": {"scheme": "apikey", "in": "header", "name": "X-Key"}}),
        );
        let c = Credentials::new().for_scheme("k", Credential::ApiKey("s3cret".into()));
        assert_eq!(run(&t, &c).unwrap().headers["x-key"], "s3cret");
        assert!(!format!("{:?}", run(&t, &c).unwrap()).contains("s3cret"));

        let t = thing("k", json!({"k": {"scheme": "apikey", "name": "key"}}));
        let err = run(&t, &c).unwrap_err().to_string();
        assert!(err.contains("query"), "{err}");
        let a = run(&t, &c.clone().allow_query_keys(true)).unwrap();
        let url = a.apply(&"http://h/p?x=1".parse().unwrap());
        assert_eq!(url.as_str(), "http://h/p?x=1&key=s3cret");
    }

    #[test]
    fn unsupported_and_combo() {
        let t = thing("o", json!({"o": {"scheme": "oauth2", "flow": "client"}}));
        let err = run(&t, &Credentials::new()).unwrap_err();
        assert!(
            err.kind() == crate::ErrorKind::Security && err.to_string().contains("`o` (oauth2)")
        );
        let t = thing(
            "c",
            json!({
                "o": {"scheme": "oauth2", "flow": "client"},
                "b": {"scheme": "bearer"},
                "c": {"scheme": "combo", "oneOf": ["o", "b"]}
            }),
        );
        let c = Credentials::new().for_scheme("b", Credential::Bearer("x".into()));
        assert_eq!(
            run(&t, &c).unwrap().headers[header::AUTHORIZATION],
            "Bearer x"
        );
        let err = run(&t, &Credentials::new()).unwrap_err().to_string();
        assert!(err.contains("oneOf"), "{err}");
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Credentials::new()
            .for_thing(
                "t",
                Credential::Basic {
                    user: "u".into(),
                    password: "hunter2".into(),
                },
            )
            .for_scheme("s", Credential::ApiKey("k3y".into()));
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && !d.contains("k3y"), "{d}");
    }
}
