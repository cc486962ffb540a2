//! Subjects and keys: Thing ids and names as single NATS tokens, partitions, and the subjects
//! records are published on.

use std::fmt::Write as _;

use crate::error::Error;

/// The default first token(s) of every subject: `wot`.
pub const DEFAULT_PREFIX: &str = "wot";

/// The default number of partitions a fleet's Things are spread over: 16.
///
/// Every process of a fleet must use the same count: it decides which subject (and so which
/// evaluator) a Thing's records go to.
pub const DEFAULT_PARTITIONS: u16 = 16;

/// The longest Thing id accepted, in bytes of UTF-8 before encoding: 1 KiB.
///
/// With the longest name and prefix, the longest subject stays under 3.6 KiB, within the
/// 4 KiB control line a NATS server reads by default.
pub const MAX_THING_ID_LEN: usize = 1024;

/// The longest affordance (property or event) name accepted, in bytes before encoding: 128.
pub const MAX_NAME_LEN: usize = 128;

/// The longest subject prefix accepted, in bytes: 32.
pub const MAX_PREFIX_LEN: usize = 32;

/// The byte that starts an escape in a token: `=`.
///
/// Not `~`: NATS key-value keys allow only `-/_=.` besides letters and digits, and one
/// encoding serves both subjects and keys.
const ESCAPE: u8 = b'=';

/// Whether `b` stands for itself in a token.
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Appends `text` to `out` as one NATS subject token (and one key-value key token).
///
/// ASCII letters, digits, `-` and `_` are kept; every other byte of the UTF-8 text (`=`, `.`,
/// `*`, `>`, `~`, spaces, control characters, non-ASCII) is written `=HH`, its value in
/// uppercase hexadecimal. The empty text is written `=`. The token is never empty, holds only
/// `[A-Za-z0-9_=-]`, and [`decode_token`] gives the text back. An encoded text is at most
/// three times as long.
///
/// # Examples
///
/// ```
/// let mut token = String::new();
/// wot_nats::encode_token("urn:dev:boiler 1", &mut token);
/// assert_eq!(token, "urn=3Adev=3Aboiler=201");
/// ```
pub fn encode_token(text: &str, out: &mut String) {
    if text.is_empty() {
        out.push(char::from(ESCAPE));
        return;
    }
    for &b in text.as_bytes() {
        if is_plain(b) {
            out.push(char::from(b));
        } else {
            out.push(char::from(ESCAPE));
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `text` as one token (see [`encode_token`]).
pub fn token(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    encode_token(text, &mut out);
    out
}

/// The text that [`encode_token`] wrote as `token`.
///
/// # Errors
///
/// [`ErrorKind::BadToken`](crate::ErrorKind::BadToken) when `token` is not what
/// [`encode_token`] writes: a byte other than `[A-Za-z0-9_=-]`, an escape without two
/// uppercase hexadecimal digits, an escaped byte that would have been kept, bytes that are not
/// UTF-8, or an empty token. Every token has one text and every text one token.
///
/// # Examples
///
/// ```
/// assert_eq!(wot_nats::decode_token("urn=3Adev=3Aboiler").unwrap(), "urn:dev:boiler");
/// assert_eq!(wot_nats::decode_token("=").unwrap(), "");
/// assert!(wot_nats::decode_token("a.b").is_err());
/// ```
pub fn decode_token(token: &str) -> Result<String, Error> {
    if token == "=" {
        return Ok(String::new());
    }
    if token.is_empty() {
        return Err(Error::bad_token(token, "empty"));
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if is_plain(b) {
            out.push(b);
            i += 1;
            continue;
        }
        if b != ESCAPE {
            return Err(Error::bad_token(token, "a byte that is never written"));
        }
        let value = match (bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(&h), Some(&l)) => match (hex_digit(h), hex_digit(l)) {
                (Some(h), Some(l)) => h << 4 | l,
                _ => return Err(Error::bad_token(token, "an escape without two hex digits")),
            },
            _ => return Err(Error::bad_token(token, "an escape cut short")),
        };
        if is_plain(value) {
            return Err(Error::bad_token(
                token,
                "an escaped byte that is written plain",
            ));
        }
        out.push(value);
        i += 3;
    }
    String::from_utf8(out).map_err(|_| Error::bad_token(token, "bytes that are not UTF-8"))
}

/// An uppercase hexadecimal digit's value (lowercase would give a second token for one text).
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// 64-bit FNV-1a of `bytes`: a fixed, documented hash any language can compute.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The partition of the Thing `thing_id` among `partitions`: the 64-bit FNV-1a hash of the
/// id's UTF-8 bytes, modulo `partitions` (0 when `partitions` is 0).
///
/// # Examples
///
/// ```
/// assert_eq!(wot_nats::partition("urn:dev:boiler", 16), 8);
/// ```
pub fn partition(thing_id: &str, partitions: u16) -> u16 {
    if partitions == 0 {
        return 0;
    }
    // The remainder is below `partitions`, a u16.
    (fnv1a(thing_id.as_bytes()) % u64::from(partitions)) as u16
}

/// Checks a Thing id against [`MAX_THING_ID_LEN`].
pub(crate) fn check_thing_id(thing_id: &str) -> Result<(), Error> {
    if thing_id.len() > MAX_THING_ID_LEN {
        return Err(Error::too_long(
            "Thing id",
            thing_id.len(),
            MAX_THING_ID_LEN,
        ));
    }
    Ok(())
}

/// Checks an affordance name against [`MAX_NAME_LEN`].
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    if name.len() > MAX_NAME_LEN {
        return Err(Error::too_long("affordance name", name.len(), MAX_NAME_LEN));
    }
    Ok(())
}

/// The subjects of a fleet: a prefix and a partition count.
///
/// | subject | records |
/// |---|---|
/// | `<prefix>.p<k>.<thing>.prop.<name>` | property values |
/// | `<prefix>.p<k>.<thing>.event.<name>` | events |
/// | `<prefix>.p<k>.<thing>.conn` | connection changes |
///
/// `<k>` is the Thing's [`partition`], `<thing>` and `<name>` are [`encode_token`]ed. So
/// `<prefix>.>` is every record, `<prefix>.p3.>` every record of partition 3 (in the order
/// the stream stored them), `<prefix>.*.<thing>.>` every record of one Thing.
///
/// # Examples
///
/// ```
/// use wot_nats::Subjects;
///
/// let subjects = Subjects::default();
/// assert_eq!(
///     subjects.property("urn:dev:boiler", "temperature").unwrap(),
///     "wot.p8.urn=3Adev=3Aboiler.prop.temperature"
/// );
/// assert_eq!(subjects.partition_filter(8), "wot.p8.>");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
    partitions: u16,
}

impl Default for Subjects {
    /// Prefix [`DEFAULT_PREFIX`], [`DEFAULT_PARTITIONS`] partitions.
    fn default() -> Self {
        Subjects {
            prefix: DEFAULT_PREFIX.to_owned(),
            partitions: DEFAULT_PARTITIONS,
        }
    }
}

impl Subjects {
    /// Subjects under `prefix` (one or more tokens of `[A-Za-z0-9_-]` joined by `.`, at most
    /// [`MAX_PREFIX_LEN`] bytes), spread over `partitions` partitions (at least 1).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for a prefix or count outside these
    /// bounds.
    pub fn new(prefix: &str, partitions: u16) -> Result<Self, Error> {
        let valid = !prefix.is_empty()
            && prefix.len() <= MAX_PREFIX_LEN
            && prefix
                .split('.')
                .all(|t| !t.is_empty() && t.bytes().all(is_plain));
        if !valid {
            return Err(Error::config(format!(
                "subject prefix {:?} must be tokens of letters, digits, `-` and `_` joined by `.`, at most {MAX_PREFIX_LEN} bytes",
                prefix.chars().take(64).collect::<String>()
            )));
        }
        if partitions == 0 {
            return Err(Error::config("the partition count must be at least 1"));
        }
        Ok(Subjects {
            prefix: prefix.to_owned(),
            partitions,
        })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The partition count.
    pub fn partitions(&self) -> u16 {
        self.partitions
    }

    /// The partition of a Thing (see [`partition`]).
    pub fn partition_of(&self, thing_id: &str) -> u16 {
        partition(thing_id, self.partitions)
    }

    /// `<prefix>.>`: every record.
    pub fn all(&self) -> String {
        format!("{}.>", self.prefix)
    }

    /// `<prefix>.p<k>.>`: every record of partition `k`.
    pub fn partition_filter(&self, k: u16) -> String {
        format!("{}.p{k}.>", self.prefix)
    }

    /// `<prefix>.p<k>.<thing>.`, the start of every subject of a Thing.
    fn thing_base(&self, thing_id: &str) -> Result<String, Error> {
        check_thing_id(thing_id)?;
        let mut s = String::with_capacity(self.prefix.len() + thing_id.len() * 3 + 32);
        let _ = write!(s, "{}.p{}.", self.prefix, self.partition_of(thing_id));
        encode_token(thing_id, &mut s);
        s.push('.');
        Ok(s)
    }

    /// `<prefix>.p<k>.<thing>.>`: every record of one Thing.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::TooLong`](crate::ErrorKind::TooLong) for an id over
    /// [`MAX_THING_ID_LEN`].
    pub fn thing_filter(&self, thing_id: &str) -> Result<String, Error> {
        let mut s = self.thing_base(thing_id)?;
        s.push('>');
        Ok(s)
    }

    /// The subject of the values of property `name` of Thing `thing_id`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::TooLong`](crate::ErrorKind::TooLong) for an id over
    /// [`MAX_THING_ID_LEN`] or a name over [`MAX_NAME_LEN`].
    pub fn property(&self, thing_id: &str, name: &str) -> Result<String, Error> {
        self.affordance(thing_id, "prop.", name)
    }

    /// The subject of the event `name` of Thing `thing_id`.
    ///
    /// # Errors
    ///
    /// As [`property`](Self::property).
    pub fn event(&self, thing_id: &str, name: &str) -> Result<String, Error> {
        self.affordance(thing_id, "event.", name)
    }

    /// The subject of the connection changes of Thing `thing_id`.
    ///
    /// # Errors
    ///
    /// As [`thing_filter`](Self::thing_filter).
    pub fn connection(&self, thing_id: &str) -> Result<String, Error> {
        let mut s = self.thing_base(thing_id)?;
        s.push_str("conn");
        Ok(s)
    }

    fn affordance(&self, thing_id: &str, kind: &str, name: &str) -> Result<String, Error> {
        check_name(name)?;
        let mut s = self.thing_base(thing_id)?;
        s.push_str(kind);
        encode_token(name, &mut s);
        Ok(s)
    }

    /// What a subject of these subjects names: its partition, Thing and affordance.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BadToken`](crate::ErrorKind::BadToken) for a subject not of this prefix
    /// and form, with a token [`decode_token`] refuses, or whose partition is not the
    /// Thing's.
    ///
    /// # Examples
    ///
    /// ```
    /// use wot_nats::{SubjectKind, Subjects};
    ///
    /// let subjects = Subjects::default();
    /// let parsed = subjects.parse("wot.p8.urn=3Adev=3Aboiler.event.overheat").unwrap();
    /// assert_eq!(parsed.thing_id, "urn:dev:boiler");
    /// assert_eq!(parsed.kind, SubjectKind::Event("overheat".into()));
    /// ```
    pub fn parse(&self, subject: &str) -> Result<ParsedSubject, Error> {
        let rest = subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix('.'))
            .ok_or_else(|| Error::bad_token(subject, "not under the subject prefix"))?;
        let mut tokens = rest.split('.');
        let (part, thing) = match (tokens.next(), tokens.next()) {
            (Some(p), Some(t)) => (p, t),
            _ => return Err(Error::bad_token(subject, "too few tokens")),
        };
        let partition = part
            .strip_prefix('p')
            .filter(|n| !n.starts_with('0') || *n == "0")
            .and_then(|n| n.parse::<u16>().ok())
            .ok_or_else(|| Error::bad_token(subject, "no partition token"))?;
        let thing_id = decode_token(thing)?;
        if partition != self.partition_of(&thing_id) {
            return Err(Error::bad_token(
                subject,
                "the partition is not the Thing's",
            ));
        }
        let kind = match (tokens.next(), tokens.next(), tokens.next()) {
            (Some("prop"), Some(name), None) => SubjectKind::Property(decode_token(name)?),
            (Some("event"), Some(name), None) => SubjectKind::Event(decode_token(name)?),
            (Some("conn"), None, None) => SubjectKind::Connection,
            _ => return Err(Error::bad_token(subject, "not a record subject")),
        };
        Ok(ParsedSubject {
            partition,
            thing_id,
            kind,
        })
    }
}

/// What a subject names, from [`Subjects::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSubject {
    /// The Thing's partition.
    pub partition: u16,
    /// The Thing's id.
    pub thing_id: String,
    /// The affordance.
    pub kind: SubjectKind,
}

/// The affordance a subject names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectKind {
    /// A property, by name.
    Property(String),
    /// An event, by name.
    Event(String),
    /// The Thing's connection changes.
    Connection,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hostile_text_becomes_one_safe_token() {
        let text = "a.b*c>d e\t\0~=é";
        let t = token(text);
        assert_eq!(t, "a=2Eb=2Ac=3Ed=20e=09=00=7E=3D=C3=A9");
        assert_eq!(decode_token(&t).unwrap(), text);
        assert_eq!(token(""), "=");
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in [
            "", "a.b", "a b", "=4", "=4g", "=4a", "=41", "=FF", "=C3", "*", ">", "~", "==",
        ] {
            assert!(decode_token(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn subjects_and_limits() {
        let s = Subjects::new("fleet.a", 4).unwrap();
        let subject = s.event("t.1", "a b").unwrap();
        assert_eq!(
            subject,
            format!("fleet.a.p{}.t=2E1.event.a=20b", s.partition_of("t.1"))
        );
        let parsed = s.parse(&subject).unwrap();
        assert_eq!(parsed.thing_id, "t.1");
        assert_eq!(parsed.kind, SubjectKind::Event("a b".into()));
        assert_eq!(
            s.parse(&s.connection("x").unwrap()).unwrap().kind,
            SubjectKind::Connection
        );
        // A wrong partition, a foreign prefix, extra tokens.
        let other = (s.partition_of("x") + 1) % 4;
        assert!(s.parse(&format!("fleet.a.p{other}.x.conn")).is_err());
        assert!(s.parse("wot.p0.x.conn").is_err());
        assert!(
            s.parse(&format!("fleet.a.p{}.x.conn.y", s.partition_of("x")))
                .is_err()
        );
        assert!(
            s.parse(&format!("fleet.a.p0{}.x.conn", s.partition_of("x")))
                .is_err()
        );
        // Limits.
        let long = "x".repeat(MAX_THING_ID_LEN + 1);
        assert_eq!(
            s.connection(&long).unwrap_err().limit(),
            Some(MAX_THING_ID_LEN)
        );
        assert!(s.property("t", &"n".repeat(MAX_NAME_LEN + 1)).is_err());
        for bad in [
            "",
            "a..b",
            "a.*",
            "a b",
            ".a",
            &"a".repeat(MAX_PREFIX_LEN + 1),
        ] {
            assert!(Subjects::new(bad, 4).is_err(), "{bad:?}");
        }
        assert!(Subjects::new("wot", 0).is_err());
    }

    #[test]
    fn fnv_matches_the_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    /// A valid NATS subject token (and key-value key token): non-empty, printable ASCII, no
    /// `.`, `*`, `>` or whitespace.
    fn is_nats_token(t: &str) -> bool {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'.' | b'*' | b'>'))
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='))
    }

    proptest! {
        #[test]
        fn round_trip_and_tokens_are_valid(text in any::<String>()) {
            let t = token(&text);
            prop_assert!(is_nats_token(&t), "{t:?}");
            prop_assert!(t.len() <= 3 * text.len().max(1));
            prop_assert_eq!(decode_token(&t).unwrap(), text);
        }

        #[test]
        fn round_trip_of_any_bytes_that_are_text(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(text) = String::from_utf8(bytes) {
                prop_assert_eq!(decode_token(&token(&text)).unwrap(), text);
            }
        }

        /// Decoding is the exact inverse: a token that decodes is the encoding of its text.
        #[test]
        fn every_decodable_token_is_canonical(t in "[A-Za-z0-9_=-]{0,24}") {
            if let Ok(text) = decode_token(&t) {
                prop_assert_eq!(token(&text), t);
            }
        }

        #[test]
        fn subjects_parse_back(thing in any::<String>(), name in any::<String>()) {
            let s = Subjects::default();
            if let (Ok(p), Ok(e)) = (s.property(&thing, &name), s.event(&thing, &name)) {
                let parsed = s.parse(&p).unwrap();
                prop_assert_eq!(&parsed.thing_id, &thing);
                prop_assert_eq!(parsed.kind, SubjectKind::Property(name.clone()));
                prop_assert_eq!(s.parse(&e).unwrap().kind, SubjectKind::Event(name));
                prop_assert!(p.split('.').all(is_nats_token));
            }
        }
    }
}
