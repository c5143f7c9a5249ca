//! Property tests of every parser that reads what comes from outside
//! (hashes, size names, keys, tokens, job and event JSON, S3 notification
//! records, media sniffing): thousands of arbitrary and near-valid inputs
//! each, and none may panic.

use proptest::prelude::*;
use thumbfarm_shared::manifest::sniff_media_type;
use thumbfarm_shared::messages::{IngestEvent, Job};
use thumbfarm_shared::sizes::Size;
use thumbfarm_shared::tokens::{SigningKey, Subject, TokenPolicy};
use thumbfarm_shared::{AssetHash, KeyLayout};

const CASES: u32 = 2000;

/// A valid document with a stretch of it replaced by arbitrary text: gets
/// past the JSON parser far more often than random bytes do.
fn mutated(valid: &'static str) -> impl Strategy<Value = String> {
    (0..valid.len(), 0..24usize, ".{0,24}").prop_map(move |(at, cut, with)| {
        let mut s = valid.to_string();
        let start = (0..=at).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + cut).min(s.len());
        let end = (end..=s.len())
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(s.len());
        s.replace_range(start..end, &with);
        s
    })
}

const RENDER_JOB: &str = r#"{"v":1,"hash":"ec952c7e6f6a5ad8a5b4e1b5c94bf1cde3d1227a","source":{"key":"originals/e/c/9/x.jpg"},"sizes":["tile_224","fit_720"],"force":false,"media_type":"image/jpeg"}"#;
const TRANSCODE_JOB: &str = r#"{"v":1,"hash":"ec952c7e6f6a5ad8a5b4e1b5c94bf1cde3d1227a","source":{"bucket":"b","key":"clips/a.mp4"},"format":"avc"}"#;
const FILE_CREATED: &str = r#"{"v":1,"event":"file.created","source":{"bucket":"photos","key":"2024/a b.jpg"},"size":1234,"media_type":"image/jpeg"}"#;
const S3_RECORD: &str = r#"{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"photos"},"object":{"key":"2024/a+b%C3%A9.jpg","size":1234,"eTag":"abc"}}}]}"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn hashes_parse_or_refuse(s in ".{0,64}") {
        if let Ok(h) = AssetHash::parse(&s) {
            prop_assert_eq!(h.to_string().len(), 40);
        }
    }

    #[test]
    fn hashes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let h = AssetHash::of_bytes(&bytes);
        prop_assert_eq!(AssetHash::parse(&h.to_string()).ok(), Some(h));
    }

    #[test]
    fn size_names_parse_or_refuse(s in "[a-z_0-9]{0,12}|.{0,16}") {
        if let Ok(size) = s.parse::<Size>() {
            prop_assert_eq!(size.name().parse::<Size>().ok(), Some(size));
        }
    }

    #[test]
    fn store_keys_parse_or_refuse(s in "(meta|thumbs|videos|originals)/[0-9a-f/]{0,8}.{0,60}") {
        let _ = KeyLayout::parse(&s);
    }

    #[test]
    fn tokens_verify_or_refuse(token in ".{0,80}", i in 0..Size::ALL.len()) {
        let hash = AssetHash::of_bytes(b"x");
        let signed = TokenPolicy::Signed(vec![
            SigningKey::new("k1", b"0123456789abcdef0123").expect("key"),
        ]);
        let preview = TokenPolicy::PreviewTokens(vec!["abcdefgh12345678".into()]);
        for policy in [TokenPolicy::Public, preview, signed] {
            let _ = policy.verify(&hash, Subject::Thumb(Size::ALL[i].into()), &token);
            let _ = policy.verify(&hash, Subject::Video("avc"), &token);
        }
    }

    #[test]
    fn jobs_from_arbitrary_bytes(
        key in "render\\.ondemand|render\\.bulk|transcode|[a-z.]{0,12}",
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = Job::parse(&key, &body);
    }

    #[test]
    fn jobs_from_near_valid_json(render in mutated(RENDER_JOB), transcode in mutated(TRANSCODE_JOB)) {
        let _ = Job::parse("render.bulk", render.as_bytes());
        let _ = Job::parse("render.ondemand", render.as_bytes());
        let _ = Job::parse("transcode", transcode.as_bytes());
    }

    #[test]
    fn ingest_events_from_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = IngestEvent::parse(&body);
    }

    #[test]
    fn ingest_events_from_near_valid_json(fc in mutated(FILE_CREATED), s3 in mutated(S3_RECORD)) {
        let _ = IngestEvent::parse(fc.as_bytes());
        let _ = IngestEvent::parse(s3.as_bytes());
    }

    #[test]
    fn s3_records_with_arbitrary_values(
        bucket in ".{0,40}",
        key in ".{0,200}",
        size in any::<i64>(),
        name in ".{0,30}",
    ) {
        let body = serde_json::json!({
            "Records": [{
                "eventName": name,
                "s3": { "bucket": { "name": bucket }, "object": { "key": key, "size": size } }
            }]
        });
        let _ = IngestEvent::parse(body.to_string().as_bytes());
    }

    #[test]
    fn media_sniffing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = sniff_media_type(&bytes);
    }
}
