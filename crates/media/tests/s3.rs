//! Storage against a real S3-API server (moto's, started by scripts/test.sh at
//! $WA2CRM_TEST_S3_ENDPOINT). Without it the test fails, saying how to start it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use wa2crm_media::store::{PART_SIZE, Put, Storage};

fn endpoint() -> String {
    std::env::var("WA2CRM_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "WA2CRM_TEST_S3_ENDPOINT is not set: these tests need an S3-API server. \
             Run scripts/test.sh, which starts one (moto) and sets it."
        )
    })
}

async fn bucket() -> (String, BTreeMap<String, String>) {
    let endpoint = endpoint();
    let name = format!(
        "wa2crm-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    // moto creates buckets on an unsigned PUT; object_store has no bucket API.
    let r = reqwest::Client::new()
        .put(format!("{endpoint}/{name}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("S3 server at {endpoint} unreachable: {e}"));
    assert!(r.status().is_success(), "bucket creation: {}", r.status());
    let options = BTreeMap::from([
        ("endpoint".to_string(), endpoint),
        ("region".to_string(), "us-east-1".to_string()),
        ("access_key_id".to_string(), "testing".to_string()),
        ("secret_access_key".to_string(), "testing".to_string()),
        ("allow_http".to_string(), "true".to_string()),
    ]);
    (name, options)
}

fn temp_file(dir: &std::path::Path, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join("spooled");
    std::fs::write(&p, data).unwrap();
    p
}

#[tokio::test]
async fn small_and_multipart_uploads_with_content_type_and_presigned_links() {
    let (bucket, options) = bucket().await;
    let s = Storage::open(&format!("s3://{bucket}/wa/media"), &options).unwrap();
    s.check().await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    let small = b"OggS voice note".to_vec();
    let path = temp_file(dir.path(), &small);
    let key = "2026/11/22/aa.ogg";
    assert_eq!(
        s.put_file(key, &path, small.len() as u64).await.unwrap(),
        Put::Created
    );
    assert_eq!(
        s.put_file(key, &path, small.len() as u64).await.unwrap(),
        Put::AlreadyThere,
        "create-if-absent: a re-run never duplicates"
    );
    assert_eq!(s.uri(key), format!("s3://{bucket}/wa/media/{key}"));
    let got = s
        .store()
        .get(&ObjectPath::from(format!("wa/media/{key}")))
        .await
        .unwrap();
    assert_eq!(
        got.attributes
            .get(&object_store::Attribute::ContentType)
            .map(|v| v.as_ref()),
        Some("audio/ogg")
    );

    let big: Vec<u8> = (0..PART_SIZE * 2 + 777).map(|i| (i % 253) as u8).collect();
    let path = temp_file(dir.path(), &big);
    let key = "2026/11/22/bb.mp4";
    assert_eq!(
        s.put_file(key, &path, big.len() as u64).await.unwrap(),
        Put::Created
    );
    assert_eq!(s.get(key).await.unwrap().unwrap().as_ref(), &big[..]);
    assert_eq!(
        s.put_file(key, &path, big.len() as u64).await.unwrap(),
        Put::AlreadyThere
    );

    let url = s
        .signed_url(key, Duration::from_secs(300))
        .await
        .unwrap()
        .unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let fetched = reqwest::get(&url).await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap().len(), big.len());
    assert!(!s.exists("2026/11/22/none.ogg").await.unwrap());

    // Retention and erasure: gone once, and a second delete finds nothing.
    assert!(s.delete(key).await.unwrap());
    assert!(!s.exists(key).await.unwrap());
    assert!(!s.delete(key).await.unwrap());
    assert_eq!(
        reqwest::get(&url).await.unwrap().status(),
        404,
        "presigned links die with it"
    );
}

/// A customer's HTML "document" is stored as a download of `application/octet-stream`, so the
/// presigned URL a browser might be handed serves it as one; a voice note keeps playing inline.
#[tokio::test]
async fn objects_carry_the_type_and_disposition_a_browser_gets_them_with() {
    let (bucket, options) = bucket().await;
    let s = Storage::open(&format!("s3://{bucket}/wa"), &options).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let page = b"<html><script>alert(document.domain)</script></html>".to_vec();
    let path = temp_file(dir.path(), &page);
    for (key, content_type, disposition) in [
        (
            "2026/11/22/cc.html",
            "application/octet-stream",
            "attachment; filename=\"cc.html\"",
        ),
        (
            "2026/11/22/dd.svg",
            "application/octet-stream",
            "attachment; filename=\"dd.svg\"",
        ),
        (
            "2026/11/22/ee.ogg",
            "audio/ogg",
            "inline; filename=\"ee.ogg\"",
        ),
    ] {
        s.put_file(key, &path, page.len() as u64).await.unwrap();
        let got = s
            .store()
            .get(&ObjectPath::from(format!("wa/{key}")))
            .await
            .unwrap();
        let attribute = |a| got.attributes.get(&a).map(|v| v.as_ref().to_owned());
        assert_eq!(
            (
                attribute(object_store::Attribute::ContentType),
                attribute(object_store::Attribute::ContentDisposition)
            ),
            (Some(content_type.into()), Some(disposition.into())),
            "{key}"
        );
        let url = s
            .signed_url(key, Duration::from_secs(300))
            .await
            .unwrap()
            .unwrap();
        let served = reqwest::get(&url).await.unwrap();
        assert_eq!(served.headers()["content-type"], content_type, "{key}");
        assert_eq!(
            served.headers()["content-disposition"],
            disposition,
            "{key}"
        );
    }
}
