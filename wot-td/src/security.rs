//! Security schemes (TD 1.1 §5.3.3).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::model::{Extensions, MultiLanguage};
use crate::one_or_many::OneOrMany;

/// Where a credential goes (`in`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SecurityIn {
    /// An HTTP header.
    Header,
    /// A URI query parameter.
    Query,
    /// The request body.
    Body,
    /// A cookie.
    Cookie,
    /// A URI template variable.
    Uri,
    /// Decided by the protocol.
    Auto,
}

/// Terms every security scheme may have.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchemeCommon {
    /// `@type`.
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub ld_type: Option<OneOrMany<String>>,
    /// `description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `descriptions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptions: Option<MultiLanguage>,
    /// `proxy`: URI of a proxy server this scheme applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Terms the model does not know, in document order.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// `nosec`, `auto` or an unknown scheme: only the common terms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlainScheme {
    /// Common terms and extensions.
    #[serde(flatten)]
    pub common: SchemeCommon,
}

/// `combo`: a combination of other schemes by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComboScheme {
    /// `oneOf`: any one of these schemes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<String>>,
    /// `allOf`: all of these schemes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_of: Option<Vec<String>>,
    /// Common terms and extensions.
    #[serde(flatten)]
    pub common: SchemeCommon,
}

/// `basic`, `apikey` and (with more terms) `digest`, `bearer`: a credential with a location.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocatedScheme {
    /// `in` (default depends on the scheme, see [`SecurityScheme::location`]).
    #[serde(rename = "in", default, skip_serializing_if = "Option::is_none")]
    pub location: Option<SecurityIn>,
    /// `name`: header, query parameter or cookie name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Common terms and extensions.
    #[serde(flatten)]
    pub common: SchemeCommon,
}

/// `digest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DigestScheme {
    /// `qop` (default `auth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qop: Option<String>,
    /// `in` and `name`, common terms and extensions.
    #[serde(flatten)]
    pub located: LocatedScheme,
}

/// `bearer`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BearerScheme {
    /// `authorization`: URI of the authorization server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    /// `alg` (default `ES256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// `format` (default `jwt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `in` and `name`, common terms and extensions.
    #[serde(flatten)]
    pub located: LocatedScheme,
}

/// `psk`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PskScheme {
    /// `identity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Common terms and extensions.
    #[serde(flatten)]
    pub common: SchemeCommon,
}

/// `oauth2`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OAuth2Scheme {
    /// `authorization`: authorization endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    /// `token`: token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `refresh`: refresh endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
    /// `scopes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<OneOrMany<String>>,
    /// `flow`: `code` or `client` in TD 1.1 (`device` and others come from extensions;
    /// `validate()` warns about them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// Common terms and extensions.
    #[serde(flatten)]
    pub common: SchemeCommon,
}

/// A security scheme from `securityDefinitions`, tagged by its `scheme` term.
///
/// A scheme this crate does not know (an extension such as `ace:ACESecurityScheme`) is
/// kept as [`SecurityScheme::Other`] with all its terms.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SecurityScheme {
    /// `nosec`: no authentication.
    NoSec(PlainScheme),
    /// `auto`: negotiated by the protocol.
    Auto(PlainScheme),
    /// `combo`: a combination of other schemes.
    Combo(ComboScheme),
    /// `basic`: user name and password.
    Basic(LocatedScheme),
    /// `digest`.
    Digest(DigestScheme),
    /// `apikey`.
    ApiKey(LocatedScheme),
    /// `bearer`: a bearer token.
    Bearer(BearerScheme),
    /// `psk`: pre-shared key.
    Psk(PskScheme),
    /// `oauth2`.
    OAuth2(OAuth2Scheme),
    /// Any other scheme, with its `scheme` value.
    Other {
        /// The `scheme` value as written.
        scheme: String,
        /// Common terms and all other terms.
        body: PlainScheme,
    },
}

impl SecurityScheme {
    /// `nosec` with no other terms.
    pub fn nosec() -> Self {
        SecurityScheme::NoSec(PlainScheme::default())
    }

    /// `basic` in the `Authorization` header.
    pub fn basic() -> Self {
        SecurityScheme::Basic(LocatedScheme::default())
    }

    /// `bearer` in the `Authorization` header (defaults `alg: ES256`, `format: jwt`).
    pub fn bearer() -> Self {
        SecurityScheme::Bearer(BearerScheme::default())
    }

    /// The `scheme` value (`"basic"`, or the unknown scheme's name).
    pub fn scheme(&self) -> &str {
        match self {
            SecurityScheme::NoSec(_) => "nosec",
            SecurityScheme::Auto(_) => "auto",
            SecurityScheme::Combo(_) => "combo",
            SecurityScheme::Basic(_) => "basic",
            SecurityScheme::Digest(_) => "digest",
            SecurityScheme::ApiKey(_) => "apikey",
            SecurityScheme::Bearer(_) => "bearer",
            SecurityScheme::Psk(_) => "psk",
            SecurityScheme::OAuth2(_) => "oauth2",
            SecurityScheme::Other { scheme, .. } => scheme,
        }
    }

    /// The common terms (`@type`, descriptions, `proxy`, extensions).
    pub fn common(&self) -> &SchemeCommon {
        match self {
            SecurityScheme::NoSec(s) | SecurityScheme::Auto(s) => &s.common,
            SecurityScheme::Other { body, .. } => &body.common,
            SecurityScheme::Combo(s) => &s.common,
            SecurityScheme::Basic(s) | SecurityScheme::ApiKey(s) => &s.common,
            SecurityScheme::Digest(s) => &s.located.common,
            SecurityScheme::Bearer(s) => &s.located.common,
            SecurityScheme::Psk(s) => &s.common,
            SecurityScheme::OAuth2(s) => &s.common,
        }
    }

    /// Effective `in` of schemes that carry a credential: the given value, else the
    /// TD 1.1 default (`header` for `basic`, `digest` and `bearer`; `query` for `apikey`).
    /// `None` for the other schemes.
    pub fn location(&self) -> Option<SecurityIn> {
        let (given, default) = match self {
            SecurityScheme::Basic(s) => (s.location, SecurityIn::Header),
            SecurityScheme::ApiKey(s) => (s.location, SecurityIn::Query),
            SecurityScheme::Digest(s) => (s.located.location, SecurityIn::Header),
            SecurityScheme::Bearer(s) => (s.located.location, SecurityIn::Header),
            _ => return None,
        };
        Some(given.unwrap_or(default))
    }

    /// The `name` of the header, query parameter or cookie, if given.
    pub fn name(&self) -> Option<&str> {
        match self {
            SecurityScheme::Basic(s) | SecurityScheme::ApiKey(s) => s.name.as_deref(),
            SecurityScheme::Digest(s) => s.located.name.as_deref(),
            SecurityScheme::Bearer(s) => s.located.name.as_deref(),
            _ => None,
        }
    }

    /// Effective `qop` of `digest` (default `auth`).
    pub fn digest_qop(&self) -> Option<&str> {
        match self {
            SecurityScheme::Digest(s) => Some(s.qop.as_deref().unwrap_or("auth")),
            _ => None,
        }
    }

    /// Effective `alg` and `format` of `bearer` (defaults `ES256`, `jwt`).
    pub fn bearer_alg_format(&self) -> Option<(&str, &str)> {
        match self {
            SecurityScheme::Bearer(s) => Some((
                s.alg.as_deref().unwrap_or("ES256"),
                s.format.as_deref().unwrap_or("jwt"),
            )),
            _ => None,
        }
    }

    fn body_value(&self) -> Result<Value, serde_json::Error> {
        match self {
            SecurityScheme::NoSec(s) | SecurityScheme::Auto(s) => serde_json::to_value(s),
            SecurityScheme::Other { body, .. } => serde_json::to_value(body),
            SecurityScheme::Combo(s) => serde_json::to_value(s),
            SecurityScheme::Basic(s) | SecurityScheme::ApiKey(s) => serde_json::to_value(s),
            SecurityScheme::Digest(s) => serde_json::to_value(s),
            SecurityScheme::Bearer(s) => serde_json::to_value(s),
            SecurityScheme::Psk(s) => serde_json::to_value(s),
            SecurityScheme::OAuth2(s) => serde_json::to_value(s),
        }
    }
}

impl Serialize for SecurityScheme {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let body = self.body_value().map_err(S::Error::custom)?;
        let mut out = Map::new();
        out.insert("scheme".to_owned(), Value::String(self.scheme().to_owned()));
        if let Value::Object(map) = body {
            out.extend(map);
        }
        out.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SecurityScheme {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut map = Map::<String, Value>::deserialize(deserializer)?;
        let scheme = match map.shift_remove("scheme") {
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "`scheme` must be a string, found {other}"
                )));
            }
            None => return Err(D::Error::missing_field("scheme")),
        };
        let body = Value::Object(map);
        /// Reads the scheme's body; the JSON path inside it is tracked only to describe
        /// an error, on a second reading.
        fn typed<T: serde::de::DeserializeOwned, E: serde::de::Error>(
            body: &Value,
            scheme: &str,
        ) -> Result<T, E> {
            if let Ok(typed) = T::deserialize(body) {
                return Ok(typed);
            }
            serde_path_to_error::deserialize(body).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path == "." {
                    E::custom(format!("in `{scheme}` security scheme: {inner}"))
                } else {
                    E::custom(format!(
                        "in `{scheme}` security scheme, at `{path}`: {inner}"
                    ))
                }
            })
        }
        Ok(match scheme.as_str() {
            "nosec" => SecurityScheme::NoSec(typed(&body, &scheme)?),
            "auto" => SecurityScheme::Auto(typed(&body, &scheme)?),
            "combo" => SecurityScheme::Combo(typed(&body, &scheme)?),
            "basic" => SecurityScheme::Basic(typed(&body, &scheme)?),
            "digest" => SecurityScheme::Digest(typed(&body, &scheme)?),
            "apikey" => SecurityScheme::ApiKey(typed(&body, &scheme)?),
            "bearer" => SecurityScheme::Bearer(typed(&body, &scheme)?),
            "psk" => SecurityScheme::Psk(typed(&body, &scheme)?),
            "oauth2" => SecurityScheme::OAuth2(typed(&body, &scheme)?),
            _ => {
                let body = typed(&body, &scheme)?;
                SecurityScheme::Other { scheme, body }
            }
        })
    }
}
