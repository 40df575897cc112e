//! The company's object storage, opened from `storage.url` (file://, s3://, gs://, az://,
//! memory://) with `storage.options` passed to the backend as they are.
//!
//! Objects are content-addressed: `{prefix}/{yyyy}/{mm}/{dd}/{sha256}.{ext}`, the date being the
//! message's. A re-run of the same job computes the same key and finds the object there, so it is
//! never stored twice; two jobs racing on the same bytes write identical content.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{
    Attribute, Attributes, ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions,
    WriteMultipart,
};
use time::Date;
use tokio::io::AsyncReadExt;
use wa2crm_core::{Error, ErrorKind};

/// Files up to this size go in one request; larger ones in parts of this size.
pub const PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts in flight at once: with [`PART_SIZE`] (S3's minimum) this bounds an upload to ~15 MiB.
const PARTS_IN_FLIGHT: usize = 2;

/// An opened storage backend.
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    signer: Option<Arc<dyn Signer>>,
    /// Keys live under this prefix (the path part of `storage.url` for cloud stores).
    prefix: String,
    /// The URL as configured, without a trailing slash: the base of `storage_uri`.
    base_uri: String,
    /// For file:// storage: the directory, so links can be served with range support.
    local_root: Option<PathBuf>,
    /// LocalFileSystem refuses object attributes (Content-Type); the others keep them.
    attributes: bool,
}

/// What `put_file` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Created,
    /// The object was already there (a re-run, or the same file sent twice).
    AlreadyThere,
}

/// The URL schemes `storage.url` may have: a local directory, memory (tests), and the cloud
/// stores object_store reaches with their aliases. Configuration checks use this list, so what
/// `check` accepts is what [`Storage::open`] opens.
pub const SCHEMES: [&str; 9] = [
    "file", "memory", "s3", "s3a", "gs", "az", "azure", "abfs", "abfss",
];

impl Storage {
    /// Opens the backend `url` names." Pure configuration: no request is made.
    pub fn open(url: &str, options: &BTreeMap<String, String>) -> Result<Storage, Error> {
        let parsed = url::Url::parse(url)
            .map_err(|e| Error::permanent(format!("storage.url {url:?}: {e}")))?;
        let base_uri = url.trim_end_matches('/').to_owned();
        let cloud_prefix = parsed.path().trim_matches('/').to_owned();
        let option_error =
            |k: &str, e: object_store::Error| Error::permanent(format!("storage.options.{k}: {e}"));
        let cloud = |store: Arc<dyn ObjectStore>, signer: Arc<dyn Signer>| Storage {
            store,
            signer: Some(signer),
            prefix: cloud_prefix.clone(),
            base_uri: base_uri.clone(),
            local_root: None,
            attributes: true,
        };
        let built = |e: object_store::Error| Error::permanent(format!("storage: {e}"));
        Ok(match parsed.scheme() {
            "file" => {
                let dir = parsed.to_file_path().map_err(|()| {
                    Error::permanent(format!("storage.url {url:?} is not a local path"))
                })?;
                std::fs::create_dir_all(&dir).map_err(|e| {
                    Error::permanent(format!("storage.url: cannot create {}: {e}", dir.display()))
                })?;
                let fs = LocalFileSystem::new_with_prefix(&dir).map_err(built)?;
                Storage {
                    store: Arc::new(fs),
                    signer: None,
                    prefix: String::new(),
                    base_uri,
                    local_root: Some(dir),
                    attributes: false,
                }
            }
            "memory" => Storage {
                store: Arc::new(InMemory::new()),
                signer: None,
                prefix: cloud_prefix,
                base_uri,
                local_root: None,
                attributes: true,
            },
            "s3" | "s3a" => {
                let mut b = AmazonS3Builder::from_env().with_url(url);
                for (k, v) in options {
                    let key: AmazonS3ConfigKey = k.parse().map_err(|e| option_error(k, e))?;
                    b = b.with_config(key, v);
                }
                let s3 = Arc::new(b.build().map_err(built)?);
                cloud(s3.clone(), s3)
            }
            "gs" => {
                let mut b = GoogleCloudStorageBuilder::from_env().with_url(url);
                for (k, v) in options {
                    let key: GoogleConfigKey = k.parse().map_err(|e| option_error(k, e))?;
                    b = b.with_config(key, v);
                }
                let gcs = Arc::new(b.build().map_err(built)?);
                cloud(gcs.clone(), gcs)
            }
            "az" | "azure" | "abfs" | "abfss" => {
                let mut b = MicrosoftAzureBuilder::from_env().with_url(url);
                for (k, v) in options {
                    let key: AzureConfigKey = k.parse().map_err(|e| option_error(k, e))?;
                    b = b.with_config(key, v);
                }
                let az = Arc::new(b.build().map_err(built)?);
                cloud(az.clone(), az)
            }
            other => {
                return Err(Error::permanent(format!(
                    "storage.url scheme {other:?} is not one of {}",
                    SCHEMES.join(", ")
                )));
            }
        })
    }

    /// The key of a file: its date (the message's, so re-runs agree), its digest and extension.
    pub fn key_for(date: Date, sha256_hex: &str, extension: &str) -> String {
        format!(
            "{:04}/{:02}/{:02}/{sha256_hex}.{extension}",
            date.year(),
            u8::from(date.month()),
            date.day()
        )
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Where the object lives, as a URL of the configured storage (`s3://bucket/prefix/key`).
    pub fn uri(&self, key: &str) -> String {
        format!("{}/{key}", self.base_uri)
    }

    /// File storage keeps the spool file itself (linked into place); other storage uploads it.
    pub fn keeps_spool_files(&self) -> bool {
        self.local_root.is_some()
    }

    /// For file:// storage, the object's path on disk.
    pub fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.local_root.as_ref().map(|root| root.join(key))
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Stores the spooled file at `key` unless an object is already there. Files larger than
    /// [`PART_SIZE`] go up in parts read straight from the file, so memory stays bounded whatever
    /// the file's size. The object is stored with the type and disposition a browser gets it with
    /// ([`Presentation`](crate::present::Presentation)), so a presigned link to it is as safe
    /// as wa2crm's own answer.
    pub async fn put_file(&self, key: &str, file: &Path, size: u64) -> Result<Put, Error> {
        if let Some(root) = &self.local_root {
            return put_local(root.join(key), file.to_owned()).await;
        }
        let path = self.path(key);
        match self.store.head(&path).await {
            Ok(_) => return Ok(Put::AlreadyThere),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(classify(e, "checking the storage")),
        }
        let mut attributes = Attributes::new();
        if self.attributes {
            let shown = crate::present::Presentation::of(key);
            attributes.insert(Attribute::ContentType, shown.content_type.into());
            attributes.insert(Attribute::ContentDisposition, shown.disposition().into());
        }
        let mut reader = tokio::fs::File::open(file)
            .await
            .map_err(|e| Error::transient(format!("spool file: {e}")))?;
        if size <= PART_SIZE as u64 {
            let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            reader
                .read_to_end(&mut buf)
                .await
                .map_err(|e| Error::transient(format!("spool file: {e}")))?;
            let opts = PutOptions {
                mode: PutMode::Create,
                attributes,
                ..PutOptions::default()
            };
            return match self
                .store
                .put_opts(&path, Bytes::from(buf).into(), opts)
                .await
            {
                Ok(_) => Ok(Put::Created),
                Err(object_store::Error::AlreadyExists { .. }) => Ok(Put::AlreadyThere),
                // Some S3-compatible servers do not implement conditional puts; the head above
                // already found no object, and content-addressed keys make a plain put safe.
                Err(
                    object_store::Error::NotImplemented { .. }
                    | object_store::Error::NotSupported { .. },
                ) => self.put_plain(&path, file).await,
                Err(e) => Err(classify(e, "storing the file")),
            };
        }
        let upload = self
            .store
            .put_multipart_opts(
                &path,
                PutMultipartOptions {
                    attributes,
                    ..PutMultipartOptions::default()
                },
            )
            .await
            .map_err(|e| classify(e, "starting the upload"))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut chunk = vec![0u8; 1024 * 1024];
        loop {
            let n = match reader.read(&mut chunk).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(Error::transient(format!("spool file: {e}")));
                }
            };
            if n == 0 {
                break;
            }
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let _ = writer.abort().await;
                return Err(classify(e, "uploading a part"));
            }
            writer.write(&chunk[..n]);
        }
        writer
            .finish()
            .await
            .map_err(|e| classify(e, "completing the upload"))?;
        Ok(Put::Created)
    }

    async fn put_plain(&self, path: &ObjectPath, file: &Path) -> Result<Put, Error> {
        let data = tokio::fs::read(file)
            .await
            .map_err(|e| Error::transient(format!("spool file: {e}")))?;
        self.store
            .put(path, Bytes::from(data).into())
            .await
            .map_err(|e| classify(e, "storing the file"))?;
        Ok(Put::Created)
    }

    pub async fn exists(&self, key: &str) -> Result<bool, Error> {
        match self.store.head(&self.path(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(classify(e, "checking the storage")),
        }
    }

    /// Deletes the object; false when it was not there (removed before: running twice is
    /// harmless). Its links answer 404 from then on.
    pub async fn delete(&self, key: &str) -> Result<bool, Error> {
        if !self.exists(key).await? {
            return Ok(false);
        }
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(classify(e, "deleting from the storage")),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, Error> {
        match self.store.get(&self.path(key)).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(|e| classify(e, "reading"))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(classify(e, "reading")),
        }
    }

    /// The object's size and its bytes as a stream; `None` when it does not exist.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<
        Option<(
            u64,
            futures_util::stream::BoxStream<'static, std::io::Result<Bytes>>,
        )>,
        Error,
    > {
        use futures_util::StreamExt;
        match self.store.get(&self.path(key)).await {
            Ok(r) => {
                let size = r.meta.size;
                let stream = r
                    .into_stream()
                    .map(|chunk| chunk.map_err(std::io::Error::other))
                    .boxed();
                Ok(Some((size, stream)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(classify(e, "reading")),
        }
    }

    /// The key of an object from its [`uri`](Self::uri); `None` for another storage's URI.
    pub fn key_of(&self, uri: &str) -> Option<String> {
        uri.strip_prefix(&self.base_uri)?
            .strip_prefix('/')
            .map(str::to_owned)
    }

    /// A presigned GET URL for cloud storage; `None` for file:// and memory://.
    pub async fn signed_url(&self, key: &str, ttl: Duration) -> Option<Result<String, Error>> {
        let signer = self.signer.as_ref()?;
        Some(
            signer
                .signed_url(http::Method::GET, &self.path(key), ttl)
                .await
                .map(|u| u.to_string())
                .map_err(|e| classify(e, "signing a link")),
        )
    }

    /// A cheap request that proves the storage answers (readiness).
    pub async fn check(&self) -> Result<(), Error> {
        self.exists(".wa2crm-readiness-probe").await.map(|_| ())
    }
}

/// File storage: the spooled file is hard-linked into place (no copy, and `link` fails if the
/// name exists, which is create-if-absent for free), then the object and its directory are
/// fsynced: once this returns, a power cut does not lose the file. object_store's local backend
/// neither links nor syncs, hence this path. Across filesystems the file is copied instead.
async fn put_local(dest: PathBuf, file: PathBuf) -> Result<Put, Error> {
    let io = |doing: &str, e: std::io::Error| {
        Error::transient(format!("storage: {doing} {}: {e}", dest.display()))
    };
    let work = {
        let dest = dest.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<Put> {
            let dir = dest.parent().unwrap_or(Path::new("/")).to_owned();
            std::fs::create_dir_all(&dir)?;
            let linked = match std::fs::hard_link(&file, &dest) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
                    let tmp = tempfile::NamedTempFile::new_in(&dir)?;
                    std::fs::copy(&file, tmp.path())?;
                    std::fs::hard_link(tmp.path(), &dest)
                }
                Err(e) => Err(e),
            };
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Ok(Put::AlreadyThere);
                }
                Err(e) => return Err(e),
            }
            std::fs::File::open(&dest)?.sync_all()?;
            std::fs::File::open(&dir)?.sync_all()?;
            Ok(Put::Created)
        })
    };
    match work.await {
        Ok(r) => r.map_err(|e| io("storing", e)),
        Err(e) => Err(Error::transient(format!("storage task failed: {e}"))),
    }
}

/// Storage errors by what the queue should do about them.
fn classify(e: object_store::Error, doing: &str) -> Error {
    use object_store::Error as E;
    let kind = match &e {
        E::NotFound { .. } => ErrorKind::NotFound,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } | E::InvalidPath { .. } => {
            ErrorKind::Permanent
        }
        E::NotSupported { .. } | E::NotImplemented { .. } => ErrorKind::Permanent,
        _ => ErrorKind::Transient,
    };
    let hint = match kind {
        ErrorKind::Permanent => {
            " (check storage.url, storage.options and the credentials' permissions)"
        }
        _ => "",
    };
    Error::new(kind, format!("storage: {doing}: {e}{hint}")).with_source(e)
}

#[cfg(test)]
mod tests;
