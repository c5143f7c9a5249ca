//! WebP, AVIF and ThumbHash end to end, with the real binaries
//! (`thumbfarm serve`: the API with its worker, decoder children and a local
//! store): every format served decodes to the right size, upright, with the
//! right colours; `Accept` negotiation both ways; the CDN form without
//! `Vary`; per-format ETags and 304s; signed URLs that do not carry over to
//! another format; the ThumbHash in the ingest answer, the preview list and
//! as a PNG; bad names answered 404 with the placeholder.

mod common;

use common::*;
use reqwest::header::{ACCEPT, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY};
use thumbfarm_shared::renditions::{OutputFormat, Rendition};
use thumbfarm_shared::tokens::{SigningKey, Subject, TokenPolicy};
use thumbfarm_shared::{AssetHash, Size};

const KEY: &str = "e2e-formats-key-0123456789";
const SIGNING: &str = "k1:0123456789abcdef0123";
const CHROME_ACCEPT: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

/// A 1200×800 JPEG stored sideways: the left half red, the right half blue,
/// with EXIF orientation 6 (rotate 90° clockwise to display). Upright it is
/// 800×1200 with red on top and blue below.
fn sideways_photo() -> Vec<u8> {
    let img = image::RgbImage::from_fn(1200, 800, |x, _| {
        if x < 600 {
            image::Rgb([220, 30, 30])
        } else {
            image::Rgb([30, 40, 210])
        }
    });
    let mut jpeg = std::io::Cursor::new(Vec::new());
    img.write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .expect("encode jpeg");
    let jpeg = jpeg.into_inner();
    // APP1 "Exif\0\0" + a little-endian TIFF with one IFD entry:
    // Orientation (0x0112), SHORT, count 1, value 6.
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&[6, 0, 0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Decodes any format thumbfarm serves into RGB8 (AVIF through libheif,
/// the rest through the `image` crate).
fn decode(content_type: &str, bytes: &[u8]) -> image::RgbImage {
    if content_type == "image/avif" {
        use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};
        let lib = LibHeif::new();
        let ctx = HeifContext::read_from_bytes(bytes).expect("AVIF container");
        let handle = ctx.primary_image_handle().expect("AVIF primary image");
        let img = lib
            .decode(&handle, ColorSpace::Rgb(RgbChroma::Rgb), None)
            .expect("AVIF decodes");
        let plane = img.planes().interleaved.expect("interleaved RGB");
        let (w, h) = (plane.width, plane.height);
        let mut out = image::RgbImage::new(w, h);
        for y in 0..h {
            let row = &plane.data[y as usize * plane.stride..][..w as usize * 3];
            for x in 0..w {
                let p = &row[x as usize * 3..][..3];
                out.put_pixel(x, y, image::Rgb([p[0], p[1], p[2]]));
            }
        }
        return out;
    }
    let format = match content_type {
        "image/webp" => image::ImageFormat::WebP,
        "image/png" => image::ImageFormat::Png,
        _ => image::ImageFormat::Jpeg,
    };
    image::load_from_memory_with_format(bytes, format)
        .expect("decodes")
        .to_rgb8()
}

fn near(p: image::Rgb<u8>, want: [u8; 3], what: &str) {
    let d =
        p.0.iter()
            .zip(want)
            .map(|(a, b)| (i32::from(*a) - i32::from(b)).abs())
            .max()
            .unwrap_or(0);
    assert!(d <= 28, "{what}: {:?} is not near {want:?}", p.0);
}

fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_format_is_served_upright_negotiated_and_signed_per_format() {
    let data = tempfile::tempdir().expect("tempdir");
    let (mut server, base) = spawn_single_machine(
        KEY,
        &[
            ("THUMBFARM_DATA_DIR", data.path().display().to_string()),
            ("THUMBFARM_NEGOTIATE_FORMAT", "true".into()),
            ("THUMBFARM_FORMATS", "avif,webp,jpeg".into()),
            ("THUMBFARM_PREGENERATE_FORMATS", "jpeg,webp".into()),
        ],
    );
    let client = reqwest::Client::new();
    wait_healthy(&client, &base).await;

    // Ingest, waiting for the render: the answer has the ThumbHash.
    let body = sideways_photo();
    let resp = client
        .post(format!("{base}/api/v1/ingest?name=side.jpg&wait=true"))
        .bearer_auth(KEY)
        .body(body.clone())
        .send()
        .await
        .expect("ingest");
    assert_eq!(resp.status(), 201);
    let json: serde_json::Value = resp.json().await.expect("ingest json");
    let hash = AssetHash::of_bytes(&body);
    assert_eq!(json["hash"], hash.to_string());
    let thumbhash = json["thumbhash"]
        .as_str()
        .expect("the ingest answer carries the ThumbHash")
        .to_string();
    let raw = base64_decode(&thumbhash);
    let ratio = thumbhash_ratio(&raw);
    assert!(
        (ratio - 800.0 / 1200.0).abs() < 0.12,
        "ThumbHash aspect {ratio}: upright portrait"
    );

    // Every format of fit_720 and tile_224: size, orientation, colours.
    for (size, (w, h)) in [(Size::Fit720, (480, 720)), (Size::Tile224, (224, 224))] {
        for (ext, ct) in [
            ("jpg", "image/jpeg"),
            ("webp", "image/webp"),
            ("avif", "image/avif"),
        ] {
            let url = format!("{base}/api/v1/t/{hash}/public/{size}.{ext}");
            let resp = get_ready(&client, &url, &[]).await;
            assert_eq!(resp.status(), 200, "{url}");
            assert_eq!(header(&resp, CONTENT_TYPE), ct, "{url}");
            assert!(
                resp.headers().get(VARY).is_none(),
                "{url}: the CDN form has no Vary"
            );
            let bytes = resp.bytes().await.expect("body");
            let img = decode(ct, &bytes);
            assert_eq!(img.dimensions(), (w, h), "{url}");
            near(
                *img.get_pixel(w / 2, h / 6),
                [220, 30, 30],
                &format!("{url} top"),
            );
            near(
                *img.get_pixel(w / 2, h * 5 / 6),
                [30, 40, 210],
                &format!("{url} bottom"),
            );
        }
    }

    // WebP was pre-generated with the JPEG set; AVIF only on request.
    let previews: serde_json::Value = client
        .get(format!("{base}/api/v1/previews/{hash}"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("previews")
        .json()
        .await
        .expect("previews json");
    let tile500 = previews
        .as_array()
        .and_then(|l| l.iter().find(|p| p["name"] == "tile_500"))
        .expect("tile_500 listed");
    assert_eq!(tile500["thumbhash"], thumbhash.as_str());
    assert_eq!(tile500["formats"]["webp"]["stored"], true, "{tile500}");
    assert!(tile500["formats"]["avif"]["href"]
        .as_str()
        .is_some_and(|h| h.ends_with("/tile_500.avif")));

    // Negotiation: the plain URL follows Accept, says Vary, and each format
    // has its own ETag; a 304 needs the ETag of the format negotiated.
    let plain = format!("{base}/api/v1/t/{hash}/public/fit_720");
    let mut etags: Vec<(&str, String)> = Vec::new();
    for (accept, ct) in [
        (CHROME_ACCEPT, "image/avif"),
        ("image/webp,*/*", "image/webp"),
        ("*/*", "image/jpeg"),
    ] {
        let resp = get_ready(&client, &plain, &[("accept", accept)]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, CONTENT_TYPE), ct, "Accept: {accept}");
        assert_eq!(header(&resp, VARY), "Accept");
        let etag = header(&resp, ETAG);
        assert!(!etag.is_empty());
        etags.push((ct, etag.clone()));
        let again = client
            .get(&plain)
            .header(ACCEPT, accept)
            .header(IF_NONE_MATCH, &etag)
            .send()
            .await
            .expect("revalidate");
        assert_eq!(again.status(), 304, "Accept: {accept}");
        assert_eq!(header(&again, VARY), "Accept");
    }
    let mut distinct: Vec<&String> = etags.iter().map(|(_, e)| e).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "one ETag per format: {etags:?}");
    // A cache holding the AVIF revalidates for a client that takes WebP only.
    let stale = client
        .get(&plain)
        .header(ACCEPT, "image/webp")
        .header(IF_NONE_MATCH, &etags[0].1)
        .send()
        .await
        .expect("request");
    assert_eq!(stale.status(), 200, "another format's ETag is no match");
    assert_eq!(header(&stale, CONTENT_TYPE), "image/webp");

    // The ThumbHash as a PNG.
    let resp = get_ready(
        &client,
        &format!("{base}/api/v1/t/{hash}/public/thumbhash"),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, CONTENT_TYPE), "image/png");
    let png = decode("image/png", &resp.bytes().await.expect("png"));
    assert!(png.height() > png.width(), "{:?}", png.dimensions());
    let top = png.get_pixel(png.width() / 2, png.height() / 8);
    let bottom = png.get_pixel(png.width() / 2, png.height() * 7 / 8);
    assert!(
        top.0[0] > top.0[2] && bottom.0[2] > bottom.0[0],
        "{top:?} {bottom:?}"
    );

    // Bad names: 404 with the placeholder.
    for bad in [
        "tile_500.gif",
        "tile_500.webp.avif",
        "tile_500.heic",
        "colors.webp",
        "tile_500.",
    ] {
        let resp = client
            .get(format!("{base}/api/v1/t/{hash}/public/{bad}"))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 404, "{bad}");
        assert_eq!(header(&resp, CONTENT_TYPE), "image/svg+xml", "{bad}");
    }
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signed_urls_do_not_carry_over_to_another_format() {
    let data = tempfile::tempdir().expect("tempdir");
    let (mut server, base) = spawn_single_machine(
        KEY,
        &[
            ("THUMBFARM_DATA_DIR", data.path().display().to_string()),
            ("THUMBFARM_TOKEN_MODE", "signed".into()),
            ("THUMBFARM_SIGNING_KEYS", SIGNING.into()),
        ],
    );
    let client = reqwest::Client::new();
    wait_healthy(&client, &base).await;
    let body = generated_jpeg(7, 900, 600);
    let resp = client
        .post(format!("{base}/api/v1/ingest?name=g.jpg"))
        .bearer_auth(KEY)
        .body(body.clone())
        .send()
        .await
        .expect("ingest");
    assert_eq!(resp.status(), 201);
    let hash = AssetHash::of_bytes(&body);
    let (id, secret) = SIGNING.split_once(':').expect("key");
    let policy = TokenPolicy::Signed(vec![SigningKey::new(id, secret.as_bytes()).expect("key")]);
    let webp = Rendition::new(Size::Tile500, OutputFormat::Webp).expect("rendition");
    let avif = Rendition::new(Size::Tile500, OutputFormat::Avif).expect("rendition");
    let webp_token = policy.mint(&hash, Subject::Thumb(webp));
    let jpeg_token = policy.mint(&hash, Subject::Thumb(Size::Tile500.into()));

    let ok = get_ready(
        &client,
        &format!("{base}/api/v1/t/{hash}/{webp_token}/tile_500.webp"),
        &[],
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(header(&ok, CONTENT_TYPE), "image/webp");
    for (token, name) in [
        (&webp_token, "tile_500.avif"),
        (&webp_token, "tile_500"),
        (&webp_token, "tile_500.jpg"),
        (&jpeg_token, "tile_500.webp"),
        (&webp_token, "tile_224.webp"),
    ] {
        let resp = client
            .get(format!("{base}/api/v1/t/{hash}/{token}/{name}"))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 403, "{name} with another URL's token");
    }
    // The plain URL and its explicit `.jpg` form share the JPEG signature.
    let jpg = get_ready(
        &client,
        &format!("{base}/api/v1/t/{hash}/{jpeg_token}/tile_500.jpg"),
        &[],
    )
    .await;
    assert_eq!(jpg.status(), 200);
    let avif_token = policy.mint(&hash, Subject::Thumb(avif));
    let resp = get_ready(
        &client,
        &format!("{base}/api/v1/t/{hash}/{avif_token}/tile_500.avif"),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let img = decode("image/avif", &resp.bytes().await.expect("avif"));
    assert_eq!(img.dimensions(), (500, 500));
    // The placeholder has its own signature.
    let resp = client
        .get(format!("{base}/api/v1/t/{hash}/{webp_token}/thumbhash"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 403);
    server.kill();
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64 ThumbHash")
}

fn thumbhash_ratio(hash: &[u8]) -> f32 {
    thumbhash::thumb_hash_to_approximate_aspect_ratio(hash).expect("a ThumbHash")
}
