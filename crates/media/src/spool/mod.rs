//! Downloads land here first: a local file per download, hashed and counted while it is written
//! (by `disk`, straight to the device past the first MiB), cut off as soon as it grows past the
//! size limit, and deleted when dropped.
//!
//! Each process works in a `run-*` directory of its own under `media.spool_dir`, locked for its
//! lifetime. At start, directories whose lock nobody holds are left over from a crash (SIGKILL,
//! power loss) and are removed: no spool file outlives the process that wrote it.

use std::fs::File;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tempfile::TempPath;
use tokio::sync::mpsc;

mod disk;
use disk::DiskWriter;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(
        "too large: more than {limit} bytes (media.max_bytes); received {received} before stopping"
    )]
    TooLarge { received: u64, limit: u64 },
    #[error("spool: {0}")]
    Io(#[from] std::io::Error),
    #[error("download interrupted after {received} bytes: {source}")]
    Source {
        received: u64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The spool directory of this process.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    // Held open: the lock on it marks the directory as in use.
    _lock: File,
    kept: Kept,
}

/// What becomes of a spool file once it is complete, which decides how it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// File storage links the spool file itself into place and fsyncs it: its bytes must reach
    /// the device, so they go there as they arrive (direct I/O past the first MiB).
    AsStored,
    /// Cloud storage uploads it and the file is deleted seconds later: the page cache is all it
    /// needs, and its pages mostly never reach the device at all.
    UntilUploaded,
}

/// A finished download: its path, size and sha256. The file is deleted when this is dropped.
#[derive(Debug)]
pub struct SpoolFile {
    path: TempPath,
    pub size: u64,
    pub sha256: [u8; 32],
}

impl SpoolFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

impl Spool {
    /// Creates this process's directory under `root` and removes those of dead processes.
    /// Customers' files pass through here: the spool directory is created 0700, each run's
    /// directory is 0700 and every file in it 0600, whatever the umask.
    pub fn open(root: &Path, kept: Kept) -> std::io::Result<Spool> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        if !root.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)?;
        }
        sweep_stale(root);
        let dir = tempfile::Builder::new()
            .prefix("run-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(root)?
            .keep();
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(dir.join(".lock"))?;
        lock.try_lock()
            .map_err(|e| std::io::Error::other(format!("cannot lock {}: {e}", dir.display())))?;
        Ok(Spool {
            dir,
            _lock: lock,
            kept,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `stream` to a new spool file, hashing and counting on the way, and stops with
    /// `TooLarge` as soon as more than `limit` bytes arrived (the partial file is deleted).
    pub async fn write<S, E>(&self, mut stream: S, limit: u64) -> Result<SpoolFile, SpoolError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let temp = tempfile::Builder::new()
            .prefix("dl-")
            .suffix(".part")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .tempfile_in(&self.dir)?;
        let (file, path) = temp.into_parts();
        let disk = DiskWriter::new(file, &path, self.kept);
        // Receiving and hashing each take a core's worth of a large download, so they run side
        // by side with the writing: this task reads the network, one thread hashes, another
        // writes (see `disk`). Network chunks (8–400 KiB) go over in batches of about
        // BATCH_BYTES, shared by both threads without copying: a message and a wake-up per chunk
        // cost as much as the hashing on a 1 GiB file. The channels are bounded, so memory stays
        // at a few batches; small batches keep the three in step rather than letting one fill a
        // queue while another waits for a core.
        let (to_hasher, from_net_h) = mpsc::channel::<Batch>(IN_FLIGHT_BATCHES);
        let (to_writer, from_net_w) = mpsc::channel::<Batch>(IN_FLIGHT_BATCHES);
        let hasher = tokio::task::spawn_blocking(move || hash_chunks(from_net_h));
        let writer = tokio::task::spawn_blocking(move || write_chunks(disk, from_net_w));
        let mut received: u64 = 0;
        let mut failure = None;
        let mut batch: Vec<Bytes> = Vec::new();
        let mut batched = 0usize;
        // Sends the batch to both threads; false when one of them stopped (a write failed).
        async fn flush(
            batch: &mut Vec<Bytes>,
            to_hasher: &mpsc::Sender<Batch>,
            to_writer: &mpsc::Sender<Batch>,
        ) -> bool {
            if batch.is_empty() {
                return true;
            }
            let shared: Batch = std::mem::take(batch).into();
            to_hasher.send(shared.clone()).await.is_ok() && to_writer.send(shared).await.is_ok()
        }
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    failure = Some(SpoolError::Source {
                        received,
                        source: Box::new(e),
                    });
                    break;
                }
            };
            received += chunk.len() as u64;
            if received > limit {
                failure = Some(SpoolError::TooLarge { received, limit });
                break;
            }
            batched += chunk.len();
            batch.push(chunk);
            // A closed channel means the writer failed; its error is collected below.
            if batched >= BATCH_BYTES {
                batched = 0;
                if !flush(&mut batch, &to_hasher, &to_writer).await {
                    break;
                }
            }
        }
        if failure.is_none() {
            flush(&mut batch, &to_hasher, &to_writer).await;
        }
        drop((to_hasher, to_writer));
        let digest = hasher.await.map_err(std::io::Error::other)?;
        let written = writer.await.map_err(std::io::Error::other)?;
        if let Some(f) = failure {
            return Err(f);
        }
        let size = written?;
        if size != received {
            return Err(SpoolError::Io(std::io::Error::other(format!(
                "spool wrote {size} of {received} bytes"
            ))));
        }
        Ok(SpoolFile {
            path,
            size: received,
            sha256: digest,
        })
    }
}

/// Network chunks, handed to the hasher and the writer together.
type Batch = std::sync::Arc<[Bytes]>;

/// About this many bytes of chunks make one batch.
const BATCH_BYTES: usize = 128 * 1024;

/// Batches waiting for the hasher or the writer.
const IN_FLIGHT_BATCHES: usize = 4;

fn hash_chunks(mut rx: mpsc::Receiver<Batch>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    while let Some(batch) = rx.blocking_recv() {
        for chunk in batch.iter() {
            hasher.update(chunk);
        }
    }
    hasher.finalize().into()
}

fn write_chunks(mut disk: DiskWriter, mut rx: mpsc::Receiver<Batch>) -> std::io::Result<u64> {
    while let Some(batch) = rx.blocking_recv() {
        for chunk in batch.iter() {
            disk.write(chunk)?;
        }
    }
    disk.finish()
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes `run-*` directories whose lock can be taken: their process is gone.
fn sweep_stale(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_run_dir = entry.file_name().to_string_lossy().starts_with("run-") && path.is_dir();
        if !is_run_dir {
            continue;
        }
        let stale = match File::open(path.join(".lock")) {
            Ok(f) => f.try_lock().is_ok(),
            // No lock file: a crash between creating the directory and locking it.
            Err(_) => true,
        };
        if stale {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {
                    tracing::info!(dir = %path.display(), "Removed a crashed process's spool.")
                }
                Err(e) => {
                    tracing::warn!(dir = %path.display(), error = %e, "Cannot remove stale spool.")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    fn files_in(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".lock")
            .collect()
    }

    #[tokio::test]
    async fn hashes_and_counts_while_writing_and_deletes_on_drop() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::open(root.path(), Kept::AsStored).unwrap();
        let f = spool
            .write(chunks(&[b"hello ", b"world"]), 100)
            .await
            .unwrap();
        assert_eq!(f.size, 11);
        assert_eq!(
            f.sha256_hex(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(std::fs::read(f.path()).unwrap(), b"hello world");
        assert_eq!(files_in(spool.dir()).len(), 1);
        drop(f);
        assert!(files_in(spool.dir()).is_empty());
    }

    #[tokio::test]
    async fn stops_as_soon_as_the_limit_is_passed() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::open(root.path(), Kept::AsStored).unwrap();
        // The stream would go on forever: the spool must stop reading, not buffer it.
        let endless =
            stream::repeat_with(|| Ok::<_, std::io::Error>(Bytes::from_static(&[0u8; 1000])));
        let err = spool.write(endless, 4_500).await.unwrap_err();
        assert!(
            matches!(
                err,
                SpoolError::TooLarge {
                    received: 5000,
                    limit: 4500
                }
            ),
            "{err}"
        );
        assert!(err.to_string().starts_with("too large:"));
        assert!(files_in(spool.dir()).is_empty(), "partial file deleted");
        // Exactly at the limit is fine.
        assert_eq!(
            spool
                .write(chunks(&[&[1u8; 4500]]), 4_500)
                .await
                .unwrap()
                .size,
            4500
        );
    }

    #[tokio::test]
    async fn a_large_download_is_hashed_and_written_whole() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::open(root.path(), Kept::AsStored).unwrap();
        // Several direct-I/O blocks and a tail, in network-sized chunks of varying length.
        let data: Vec<u8> = (0..5 * 1024 * 1024 + 777)
            .map(|i| (i % 253) as u8)
            .collect();
        let mut parts = Vec::new();
        let mut rest = &data[..];
        let mut n = 1usize;
        while !rest.is_empty() {
            let len = (8_192 * n % 400_000 + 1).min(rest.len());
            parts.push(Ok::<_, std::io::Error>(Bytes::copy_from_slice(
                &rest[..len],
            )));
            rest = &rest[len..];
            n += 7;
        }
        let f = spool.write(stream::iter(parts), 1 << 30).await.unwrap();
        assert_eq!(f.size, data.len() as u64);
        assert_eq!(f.sha256, <[u8; 32]>::from(Sha256::digest(&data)));
        assert!(std::fs::read(f.path()).unwrap() == data, "content differs");
    }

    #[tokio::test]
    async fn a_broken_download_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::open(root.path(), Kept::AsStored).unwrap();
        let broken = stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Err(std::io::Error::other("connection reset")),
        ]);
        let err = spool.write(broken, 100).await.unwrap_err();
        assert!(
            matches!(err, SpoolError::Source { received: 3, .. }),
            "{err}"
        );
        assert!(files_in(spool.dir()).is_empty());
    }

    #[tokio::test]
    async fn a_crashed_process_spool_is_swept_and_a_live_one_kept() {
        let root = tempfile::tempdir().unwrap();
        // A crashed process: its directory and a partial download, and nobody holds the lock.
        let dead = root.path().join("run-dead");
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::write(dead.join(".lock"), b"").unwrap();
        std::fs::write(dead.join("dl-1.part"), b"partial").unwrap();
        let live = Spool::open(root.path(), Kept::AsStored).unwrap();
        assert!(!dead.exists(), "stale spool removed at start");
        // A second process starting now must leave the live one alone.
        let other = Spool::open(root.path(), Kept::AsStored).unwrap();
        assert!(live.dir().exists());
        assert_ne!(live.dir(), other.dir());
        let live_dir = live.dir().to_owned();
        drop(live);
        assert!(!live_dir.exists(), "a clean stop removes its own directory");
    }
}
