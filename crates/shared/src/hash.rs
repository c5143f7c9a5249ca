//! Asset hashes: the SHA-1 of the original's bytes, 40 lowercase hex characters.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha1::{Digest, Sha1};
use std::fmt;
use std::str::FromStr;

/// A validated asset hash. Only 40 lowercase hex characters parse; anything
/// else (upper case, other lengths, path separators, dots) is rejected.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssetHash([u8; 40]);

/// A string that is not an asset hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid asset hash: expected 40 lowercase hex characters")]
pub struct InvalidHash;

impl AssetHash {
    /// Parses a hash, rejecting anything but 40 lowercase hex characters.
    pub fn parse(s: &str) -> Result<Self, InvalidHash> {
        let bytes = s.as_bytes();
        if bytes.len() != 40 || !bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(InvalidHash);
        }
        let mut out = [0u8; 40];
        out.copy_from_slice(bytes);
        Ok(AssetHash(out))
    }

    /// The SHA-1 of a byte slice.
    pub fn of_bytes(data: &[u8]) -> Self {
        Self::from_digest(Sha1::digest(data).into())
    }

    /// The hash of a finished SHA-1 digest.
    pub fn from_digest(digest: [u8; 20]) -> Self {
        let hex = hex::encode(digest);
        let mut out = [0u8; 40];
        out.copy_from_slice(hex.as_bytes());
        AssetHash(out)
    }

    /// The 40 hex characters.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for AssetHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for AssetHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AssetHash({})", self.as_str())
    }
}

impl FromStr for AssetHash {
    type Err = InvalidHash;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AssetHash::parse(s)
    }
}

impl Serialize for AssetHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AssetHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        AssetHash::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Computes an asset hash incrementally while streaming an original.
#[derive(Default, Clone)]
pub struct HashingReader {
    hasher: Sha1,
    bytes: u64,
}

impl HashingReader {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
    }

    /// Bytes fed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The hash of everything fed.
    pub fn finish(self) -> AssetHash {
        AssetHash::from_digest(self.hasher.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "ec952cab562a55d96ddff2a2fcc41e875393a27a";

    #[test]
    fn parses_lowercase_sha1() {
        assert_eq!(
            AssetHash::parse(GOOD).map(|h| h.to_string()),
            Ok(GOOD.to_string())
        );
    }

    #[test]
    fn rejects_everything_else() {
        let upper = GOOD.to_uppercase();
        let bad = [
            "",
            &GOOD[..39],
            &format!("{GOOD}0"),
            &upper,
            "ec952cab562a55d96ddff2a2fcc41e875393a27g",
            "../../../../../../../../../../etc/passwd",
            "ec952cab562a55d96ddff2a2fcc41e875393a2/a",
            "ec952cab562a55d96ddff2a2fcc41e875393a2.a",
            " ec952cab562a55d96ddff2a2fcc41e875393a27",
            "ec952cab562a55d96ddff2a2fcc41e875393a2é",
        ];
        for s in bad {
            assert_eq!(AssetHash::parse(s), Err(InvalidHash), "{s:?}");
        }
    }

    #[test]
    fn hashes_bytes_like_sha1sum() {
        assert_eq!(
            AssetHash::of_bytes(b"abc").as_str(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let mut r = HashingReader::new();
        r.update(b"a");
        r.update(b"bc");
        assert_eq!(r.bytes(), 3);
        assert_eq!(r.finish(), AssetHash::of_bytes(b"abc"));
    }

    #[test]
    fn serde_round_trip_validates() {
        let h: AssetHash = serde_json::from_str(&format!("\"{GOOD}\"")).unwrap();
        assert_eq!(serde_json::to_string(&h).unwrap(), format!("\"{GOOD}\""));
        assert!(serde_json::from_str::<AssetHash>("\"../x\"").is_err());
    }
}
