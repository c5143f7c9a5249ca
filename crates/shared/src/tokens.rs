//! URL tokens for the three deployment modes (docs/contracts.md §4): `public`,
//! `preview-token` (a rotation list of shared tokens) and `signed` (a
//! truncated HMAC-SHA256 per hash and size or format, with a key id).
//!
//! All comparisons are constant-time.

use crate::hash::AssetHash;
use crate::renditions::Rendition;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use subtle::ConstantTimeEq;

/// The longest token accepted anywhere.
pub const MAX_TOKEN_LEN: usize = 64;
/// Characters of base64url MAC in a signed token (132 bits).
const MAC_CHARS: usize = 22;
/// The shortest signing secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// How URL tokens are checked in a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenMode {
    /// The token segment must be the literal `public`.
    Public,
    /// One or more configured tokens; the first is current.
    PreviewToken,
    /// A per-URL HMAC signature.
    Signed,
}

impl fmt::Display for TokenMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenMode::Public => "public",
            TokenMode::PreviewToken => "preview-token",
            TokenMode::Signed => "signed",
        })
    }
}

/// What a token grants access to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// One thumbnail size in one format (the classic JPEG/PNG signs as the
    /// bare size name, as before formats existed).
    Thumb(Rendition),
    /// The ThumbHash placeholder of an asset (`…/thumbhash`).
    Placeholder,
    /// One video format (`avc`).
    Video(&'a str),
}

impl Subject<'_> {
    fn label(&self) -> String {
        match self {
            Subject::Thumb(r) => format!("t:{}", r.name()),
            Subject::Placeholder => "t:thumbhash".to_string(),
            Subject::Video(format) => format!("v:{format}"),
        }
    }
}

/// A signing key with its id.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    id: String,
    secret: Vec<u8>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, <redacted>)", self.id)
    }
}

/// A token configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenConfigError {
    #[error("token mode preview-token needs at least one token in --preview-tokens")]
    NoPreviewTokens,
    #[error("token mode signed needs at least one key in --signing-keys (format id:secret)")]
    NoSigningKeys,
    #[error("token {0:?} is not URL-safe (only A-Z a-z 0-9 - _, 1 to 64 characters)")]
    BadToken(String),
    #[error(
        "signing key {0:?} must be written id:secret, the id 1 to 16 characters of A-Z a-z 0-9 - _"
    )]
    BadKeyId(String),
    #[error("signing key {0:?} has a secret shorter than {MIN_SECRET_LEN} bytes")]
    ShortSecret(String),
    #[error("signing key id {0:?} is configured twice")]
    DuplicateKeyId(String),
}

fn is_url_safe(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl SigningKey {
    /// A key with an id (1 to 16 URL-safe characters) and a secret of at
    /// least 16 bytes.
    pub fn new(id: &str, secret: &[u8]) -> Result<Self, TokenConfigError> {
        if !is_url_safe(id, 16) {
            return Err(TokenConfigError::BadKeyId(id.chars().take(32).collect()));
        }
        if secret.len() < MIN_SECRET_LEN {
            return Err(TokenConfigError::ShortSecret(id.to_string()));
        }
        Ok(SigningKey {
            id: id.to_string(),
            secret: secret.to_vec(),
        })
    }

    /// The key id carried in tokens.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self, hash: &AssetHash, subject: Subject<'_>) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"thumbfarm/v1\n");
        mac.update(self.id.as_bytes());
        mac.update(b"\n");
        mac.update(hash.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(subject.label().as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut text = URL_SAFE_NO_PAD.encode(digest);
        text.truncate(MAC_CHARS);
        text
    }
}

impl FromStr for SigningKey {
    type Err = TokenConfigError;
    /// Parses `id:secret`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, secret) = s
            .split_once(':')
            .ok_or_else(|| TokenConfigError::BadKeyId(s.chars().take(16).collect()))?;
        SigningKey::new(id.trim(), secret.trim().as_bytes())
    }
}

/// The token policy of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenPolicy {
    /// Only the literal `public`.
    Public,
    /// Any of these tokens; the first is the one new URLs get.
    PreviewTokens(Vec<String>),
    /// HMAC signatures; the first key signs new URLs, all verify.
    Signed(Vec<SigningKey>),
}

/// Compares two strings in constant time, independent of their lengths.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let da = Sha256::digest(a.as_bytes());
    let db = Sha256::digest(b.as_bytes());
    bool::from(da.ct_eq(&db))
}

impl TokenPolicy {
    /// Builds the policy for a mode from the configured tokens and keys.
    pub fn from_config(
        mode: TokenMode,
        preview_tokens: &[String],
        signing_keys: &[SigningKey],
    ) -> Result<Self, TokenConfigError> {
        match mode {
            TokenMode::Public => Ok(TokenPolicy::Public),
            TokenMode::PreviewToken => {
                if preview_tokens.is_empty() {
                    return Err(TokenConfigError::NoPreviewTokens);
                }
                for t in preview_tokens {
                    if !is_url_safe(t, MAX_TOKEN_LEN) || t == "public" {
                        return Err(TokenConfigError::BadToken(t.chars().take(16).collect()));
                    }
                }
                Ok(TokenPolicy::PreviewTokens(preview_tokens.to_vec()))
            }
            TokenMode::Signed => {
                if signing_keys.is_empty() {
                    return Err(TokenConfigError::NoSigningKeys);
                }
                for (i, k) in signing_keys.iter().enumerate() {
                    if signing_keys[..i].iter().any(|o| o.id == k.id) {
                        return Err(TokenConfigError::DuplicateKeyId(k.id.clone()));
                    }
                }
                Ok(TokenPolicy::Signed(signing_keys.to_vec()))
            }
        }
    }

    /// The mode of this policy.
    pub fn mode(&self) -> TokenMode {
        match self {
            TokenPolicy::Public => TokenMode::Public,
            TokenPolicy::PreviewTokens(_) => TokenMode::PreviewToken,
            TokenPolicy::Signed(_) => TokenMode::Signed,
        }
    }

    /// The token for a new URL of `subject` of `hash`.
    pub fn mint(&self, hash: &AssetHash, subject: Subject<'_>) -> String {
        match self {
            TokenPolicy::Public => "public".to_string(),
            TokenPolicy::PreviewTokens(tokens) => tokens.first().cloned().unwrap_or_default(),
            TokenPolicy::Signed(keys) => match keys.first() {
                Some(key) => format!("{}.{}", key.id, key.mac(hash, subject)),
                None => String::new(),
            },
        }
    }

    /// Whether `token` grants `subject` of `hash`.
    pub fn verify(&self, hash: &AssetHash, subject: Subject<'_>, token: &str) -> bool {
        if token.len() > MAX_TOKEN_LEN {
            return false;
        }
        match self {
            TokenPolicy::Public => constant_time_eq(token, "public"),
            TokenPolicy::PreviewTokens(tokens) => tokens
                .iter()
                .fold(false, |ok, t| ok | constant_time_eq(token, t)),
            TokenPolicy::Signed(keys) => {
                let Some((kid, mac)) = token.split_once('.') else {
                    return false;
                };
                keys.iter().filter(|k| k.id == kid).fold(false, |ok, k| {
                    ok | constant_time_eq(mac, &k.mac(hash, subject))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::renditions::OutputFormat;
    use crate::sizes::Size;

    #[test]
    fn signed_tokens_cover_the_format() {
        let key = SigningKey::new("k1", b"0123456789abcdef").unwrap();
        let p = TokenPolicy::Signed(vec![key]);
        let jpeg = Subject::Thumb(Size::Tile500.into());
        let webp = Subject::Thumb(Rendition::new(Size::Tile500, OutputFormat::Webp).unwrap());
        let avif = Subject::Thumb(Rendition::new(Size::Tile500, OutputFormat::Avif).unwrap());
        let t = p.mint(&h('a'), webp);
        assert!(p.verify(&h('a'), webp, &t));
        assert!(!p.verify(&h('a'), jpeg, &t));
        assert!(!p.verify(&h('a'), avif, &t));
        assert!(!p.verify(&h('a'), Subject::Placeholder, &t));
        // The other modes do not depend on the format.
        assert!(TokenPolicy::Public.verify(&h('a'), avif, "public"));
    }

    fn h(c: char) -> AssetHash {
        AssetHash::parse(&c.to_string().repeat(40)).unwrap()
    }

    fn key(id: &str, secret: &str) -> SigningKey {
        SigningKey::new(id, secret.as_bytes()).unwrap()
    }

    #[test]
    fn public_mode_takes_only_public() {
        let p = TokenPolicy::from_config(TokenMode::Public, &[], &[]).unwrap();
        let s = Subject::Thumb(Size::Fit720.into());
        assert_eq!(p.mint(&h('a'), s), "public");
        assert!(p.verify(&h('a'), s, "public"));
        for bad in ["", "Public", "public ", "publicx", "x"] {
            assert!(!p.verify(&h('a'), s, bad), "{bad:?}");
        }
    }

    #[test]
    fn preview_tokens_rotate() {
        let tokens = vec!["newtoken1".to_string(), "oldtoken0".to_string()];
        let p = TokenPolicy::from_config(TokenMode::PreviewToken, &tokens, &[]).unwrap();
        let s = Subject::Thumb(Size::Tile50.into());
        assert_eq!(p.mint(&h('a'), s), "newtoken1");
        assert!(p.verify(&h('a'), s, "newtoken1"));
        assert!(
            p.verify(&h('b'), s, "oldtoken0"),
            "old token accepted during rotation"
        );
        for bad in [
            "",
            "public",
            "newtoken",
            "newtoken11",
            "NEWTOKEN1",
            "retired00",
        ] {
            assert!(!p.verify(&h('a'), s, bad), "{bad:?}");
        }
        // After the rotation ends, the old token no longer works.
        let p = TokenPolicy::from_config(TokenMode::PreviewToken, &tokens[..1], &[]).unwrap();
        assert!(!p.verify(&h('a'), s, "oldtoken0"));
    }

    #[test]
    fn preview_token_config_is_validated() {
        let check = |t: &[&str]| {
            let v: Vec<String> = t.iter().map(|s| s.to_string()).collect();
            TokenPolicy::from_config(TokenMode::PreviewToken, &v, &[])
        };
        assert_eq!(check(&[]), Err(TokenConfigError::NoPreviewTokens));
        assert!(check(&["a/b"]).is_err());
        assert!(check(&["public"]).is_err());
        assert!(check(&[&"x".repeat(65)]).is_err());
        assert!(check(&[&"x".repeat(64)]).is_ok());
    }

    #[test]
    fn signed_tokens_are_per_hash_and_subject() {
        let p = TokenPolicy::from_config(
            TokenMode::Signed,
            &[],
            &[
                key("k2", "a-new-secret-of-32-bytes-length!"),
                key("k1", "the-old-secret-16"),
            ],
        )
        .unwrap();
        let tile = Subject::Thumb(Size::Tile224.into());
        let t = p.mint(&h('a'), tile);
        assert!(t.starts_with("k2.") && t.len() <= MAX_TOKEN_LEN, "{t}");
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        assert!(p.verify(&h('a'), tile, &t));
        // Knowing one URL reveals nothing about another size, format or asset.
        assert!(!p.verify(&h('a'), Subject::Thumb(Size::Fit7680.into()), &t));
        assert!(!p.verify(&h('a'), Subject::Video("avc"), &t));
        assert!(!p.verify(&h('b'), tile, &t));
        assert_ne!(p.mint(&h('a'), Subject::Thumb(Size::Fit7680.into())), t);
    }

    #[test]
    fn forged_truncated_and_wrong_key_tokens_fail() {
        let k1 = key("k1", "the-old-secret-16");
        let p =
            TokenPolicy::from_config(TokenMode::Signed, &[], std::slice::from_ref(&k1)).unwrap();
        let s = Subject::Thumb(Size::Fit1920.into());
        let good = p.mint(&h('c'), s);
        // Truncated.
        assert!(!p.verify(&h('c'), s, &good[..good.len() - 1]));
        assert!(!p.verify(&h('c'), s, "k1."));
        // Forged: one character flipped.
        let mut forged = good.clone().into_bytes();
        let last = forged.len() - 1;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        assert!(!p.verify(&h('c'), s, std::str::from_utf8(&forged).unwrap()));
        // Wrong key: same id, other secret.
        let other =
            TokenPolicy::from_config(TokenMode::Signed, &[], &[key("k1", "another-secret-of-16")])
                .unwrap();
        assert!(!other.verify(&h('c'), s, &good));
        // Unknown key id, missing separator, public, over-long.
        assert!(!p.verify(&h('c'), s, &good.replacen("k1.", "k9.", 1)));
        assert!(!p.verify(&h('c'), s, &good.replacen("k1.", "k1", 1)));
        assert!(!p.verify(&h('c'), s, "public"));
        assert!(!p.verify(&h('c'), s, &format!("{good}{}", "A".repeat(64))));
    }

    #[test]
    fn rotated_signing_keys() {
        let old =
            TokenPolicy::from_config(TokenMode::Signed, &[], &[key("k1", "the-old-secret-16")])
                .unwrap();
        let s = Subject::Video("avc");
        let old_token = old.mint(&h('d'), s);
        let rotating = TokenPolicy::from_config(
            TokenMode::Signed,
            &[],
            &[
                key("k2", "a-new-secret-of-32-bytes-length!"),
                key("k1", "the-old-secret-16"),
            ],
        )
        .unwrap();
        assert!(
            rotating.verify(&h('d'), s, &old_token),
            "old key verifies during rotation"
        );
        assert!(rotating.mint(&h('d'), s).starts_with("k2."));
        let rotated = TokenPolicy::from_config(
            TokenMode::Signed,
            &[],
            &[key("k2", "a-new-secret-of-32-bytes-length!")],
        )
        .unwrap();
        assert!(
            !rotated.verify(&h('d'), s, &old_token),
            "retired key no longer verifies"
        );
    }

    #[test]
    fn signing_key_config_is_validated() {
        assert!("k1:0123456789abcdef".parse::<SigningKey>().is_ok());
        assert!(matches!(
            "k1:short".parse::<SigningKey>(),
            Err(TokenConfigError::ShortSecret(_))
        ));
        assert!(matches!(
            "nosecret".parse::<SigningKey>(),
            Err(TokenConfigError::BadKeyId(_))
        ));
        assert!(matches!(
            "k/1:0123456789abcdef".parse::<SigningKey>(),
            Err(TokenConfigError::BadKeyId(_))
        ));
        let k = key("k1", "the-old-secret-16");
        assert_eq!(
            TokenPolicy::from_config(TokenMode::Signed, &[], &[k.clone(), k]),
            Err(TokenConfigError::DuplicateKeyId("k1".into()))
        );
        assert_eq!(
            TokenPolicy::from_config(TokenMode::Signed, &[], &[]),
            Err(TokenConfigError::NoSigningKeys)
        );
        assert!(!format!("{:?}", key("k1", "the-old-secret-16")).contains("secret-16"));
    }

    #[test]
    fn constant_time_eq_works_across_lengths() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abcd"));
        assert!(!constant_time_eq("", "a"));
    }
}
