use super::*;
use time::macros::date;

fn write_temp(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

#[test]
fn keys_are_dated_and_content_addressed() {
    assert_eq!(
        Storage::key_for(date!(2026 - 03 - 07), "abc123", "ogg"),
        "2026/03/07/abc123.ogg"
    );
}

#[tokio::test]
async fn file_storage_creates_once_and_keeps_the_bytes() {
    let root = tempfile::tempdir().unwrap();
    let url = format!("file://{}/media", root.path().display());
    let s = Storage::open(&url, &BTreeMap::new()).unwrap();
    let src = write_temp(root.path(), "src", b"voice note bytes");
    let key = "2026/11/22/deadbeef.ogg";
    assert_eq!(s.put_file(key, &src, 16).await.unwrap(), Put::Created);
    assert_eq!(s.put_file(key, &src, 16).await.unwrap(), Put::AlreadyThere);
    let on_disk = s.local_path(key).unwrap();
    assert_eq!(std::fs::read(&on_disk).unwrap(), b"voice note bytes");
    assert_eq!(s.uri(key), format!("{url}/{key}"));
    assert!(s.exists(key).await.unwrap());
    assert!(!s.exists("2026/11/22/nope.ogg").await.unwrap());
    assert!(s.signed_url(key, Duration::from_secs(60)).await.is_none());
    s.check().await.unwrap();
    assert!(s.delete(key).await.unwrap());
    assert!(!on_disk.exists());
    assert!(!s.delete(key).await.unwrap(), "deleting twice is harmless");
}

#[tokio::test]
async fn large_files_go_up_in_parts() {
    let root = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..(PART_SIZE * 2 + 12345))
        .map(|i| (i % 251) as u8)
        .collect();
    let src = write_temp(root.path(), "big", &data);
    for url in [
        format!("file://{}/media", root.path().display()),
        "memory:///".to_string(),
    ] {
        let s = Storage::open(&url, &BTreeMap::new()).unwrap();
        let key = "2026/11/22/big.mp4";
        let put = s.put_file(key, &src, data.len() as u64).await.unwrap();
        assert_eq!(put, Put::Created, "{url}");
        assert_eq!(
            s.get(key).await.unwrap().unwrap().as_ref(),
            &data[..],
            "{url}"
        );
        let again = s.put_file(key, &src, data.len() as u64).await.unwrap();
        assert_eq!(again, Put::AlreadyThere, "{url}");
    }
}

#[tokio::test]
async fn memory_storage_keeps_the_content_type() {
    let root = tempfile::tempdir().unwrap();
    let s = Storage::open("memory:///prefix", &BTreeMap::new()).unwrap();
    let src = write_temp(root.path(), "img", b"\x89PNG....");
    s.put_file("k.png", &src, 8).await.unwrap();
    let meta = s
        .store()
        .get(&ObjectPath::from("prefix/k.png"))
        .await
        .unwrap();
    assert_eq!(
        meta.attributes
            .get(&Attribute::ContentType)
            .map(|v| v.as_ref()),
        Some("image/png")
    );
    assert_eq!(s.uri("k.png"), "memory:///prefix/k.png");
}

#[test]
fn bad_urls_and_options_name_the_key() {
    let err = Storage::open("dropbox://x", &BTreeMap::new())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("storage.url scheme \"dropbox\""),
        "{err}"
    );
    let opts = BTreeMap::from([("no_such_option".to_string(), "1".to_string())]);
    let err = Storage::open("s3://bucket/prefix", &opts).err().unwrap();
    assert!(
        err.to_string().contains("storage.options.no_such_option"),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Permanent);
}
