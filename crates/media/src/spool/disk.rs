//! Where a download's bytes meet the disk: past the first MiB, whole blocks go straight to the
//! device with direct I/O; the rest goes through the page cache.
//!
//! Copying a large download into the page cache, and then writing the dirty pages back, cost the
//! CPU as much as receiving it; on a 2-core machine that is what held a 1 GiB download back, not
//! the disk. Direct I/O lets the device take whole aligned blocks from memory instead. It also
//! keeps media that will not be read again from pushing useful pages out of the cache. Where the
//! filesystem refuses direct I/O (tmpfs before Linux 6.6, some FUSE and network filesystems) the
//! writer falls back to buffered writes, flushed in the background as the file grows so that the
//! store's fsync finds little left to do.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::Kept;

/// Direct writes go in blocks of this size: large enough that each costs the device one request
/// per MiB, small enough to keep a download's memory flat.
const BLOCK: usize = 1 << 20;

/// The alignment direct I/O asks of memory, file offsets and lengths: 4096 serves devices with
/// 512- and 4096-byte logical blocks alike. A device that wants more refuses the write, and the
/// writer falls back.
const ALIGN: usize = 4096;

/// Buffered writes are handed to the disk every this many bytes while the file grows.
const WRITE_BEHIND: u64 = 16 * 1024 * 1024;

/// Writes one spool file, front to back.
pub(super) struct DiskWriter {
    /// Through the page cache: the first block, the tail, and everything when direct I/O is
    /// refused.
    file: File,
    path: PathBuf,
    mode: Mode,
    written: u64,
    flushed: u64,
    flusher: Option<Flusher>,
}

enum Mode {
    /// The first block goes through the page cache: most media are smaller than that and are
    /// read again at once, to be probed and stored.
    FirstBlock,
    Direct(Direct),
    Buffered,
    /// A file read once and deleted: through the page cache, never flushed.
    Transient,
}

/// The direct-I/O handle and its aligned staging block.
struct Direct {
    file: File,
    // The block is `buf[start..start + BLOCK]`: a Vec gives no alignment, so it is allocated
    // ALIGN bytes longer and the aligned window inside it is used.
    buf: Vec<u8>,
    start: usize,
    filled: usize,
}

impl DiskWriter {
    /// `file` is the spool file just created at `path`, empty.
    pub(super) fn new(file: File, path: &Path, kept: Kept) -> DiskWriter {
        DiskWriter {
            file,
            path: path.to_owned(),
            mode: match kept {
                Kept::AsStored => Mode::FirstBlock,
                Kept::UntilUploaded => Mode::Transient,
            },
            written: 0,
            flushed: 0,
            flusher: None,
        }
    }

    pub(super) fn write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            match &mut self.mode {
                Mode::FirstBlock => {
                    let n = (BLOCK as u64 - self.written).min(data.len() as u64) as usize;
                    self.file.write_all_at(&data[..n], self.written)?;
                    self.written += n as u64;
                    data = &data[n..];
                    if self.written == BLOCK as u64 {
                        // From here on every block starts at an aligned offset.
                        self.mode = Direct::open(&self.path).map_or(Mode::Buffered, Mode::Direct);
                    }
                }
                Mode::Direct(d) => {
                    let n = (BLOCK - d.filled).min(data.len());
                    let at = d.start + d.filled;
                    d.buf[at..at + n].copy_from_slice(&data[..n]);
                    d.filled += n;
                    data = &data[n..];
                    if d.filled == BLOCK {
                        self.write_block()?;
                    }
                }
                Mode::Buffered | Mode::Transient => {
                    self.file.write_all_at(data, self.written)?;
                    self.written += data.len() as u64;
                    if matches!(self.mode, Mode::Buffered) {
                        self.write_behind();
                    }
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Writes the staged block at the end of the file: directly, or through the page cache from
    /// now on if the filesystem turns direct I/O down.
    fn write_block(&mut self) -> std::io::Result<()> {
        let Mode::Direct(d) = &mut self.mode else {
            return Ok(());
        };
        let block = &d.buf[d.start..d.start + d.filled];
        let len = block.len() as u64;
        match d.file.write_all_at(block, self.written) {
            Ok(()) => d.filled = 0,
            // Some filesystems accept O_DIRECT at open and refuse the write itself.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                self.file.write_all_at(block, self.written)?;
                self.mode = Mode::Buffered;
            }
            Err(e) => return Err(e),
        }
        self.written += len;
        Ok(())
    }

    fn write_behind(&mut self) {
        if self.written - self.flushed >= WRITE_BEHIND {
            self.flushed = self.written;
            self.flusher
                .get_or_insert_with(|| Flusher::start(&self.file))
                .request();
        }
    }

    /// Writes what is left (less than a block, through the page cache) and returns the size.
    pub(super) fn finish(mut self) -> std::io::Result<u64> {
        if let Mode::Direct(d) = &self.mode {
            let tail = &d.buf[d.start..d.start + d.filled];
            self.file.write_all_at(tail, self.written)?;
            self.written += tail.len() as u64;
        }
        Ok(self.written)
    }
}

impl Direct {
    /// A second handle on the spool file with O_DIRECT, or None where that is not available.
    fn open(path: &Path) -> Option<Direct> {
        Direct::open_skewed(path, 0)
    }

    /// `skew` moves the block off its alignment, which only tests do: the kernel then refuses
    /// the writes, as some filesystems refuse direct I/O.
    #[cfg(target_os = "linux")]
    fn open_skewed(path: &Path, skew: usize) -> Option<Direct> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok()?;
        let buf = vec![0u8; BLOCK + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN) + skew;
        (start <= ALIGN).then_some(Direct {
            file,
            buf,
            start,
            filled: 0,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn open_skewed(_path: &Path, _skew: usize) -> Option<Direct> {
        None
    }
}

/// Writes a buffered spool file's dirty pages to disk in the background while the download goes
/// on, so that the writer never waits on the disk (which would stall the download and the hash
/// behind it for a few dozen milliseconds every time).
struct Flusher {
    wake: Option<std::sync::mpsc::SyncSender<()>>,
}

impl Flusher {
    fn start(file: &File) -> Flusher {
        let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
        // Without a second handle or a thread the file is simply flushed by the store's fsync.
        let Ok(handle) = file.try_clone() else {
            return Flusher { wake: None };
        };
        let spawned = std::thread::Builder::new()
            .name("spool-flush".into())
            .spawn(move || {
                // Errors are left to the store's fsync, which reports them with context. The
                // thread is not joined: the store's fsync waits for the same pages anyway, and
                // an upload to object storage has no reason to wait for them at all.
                while woken.recv().is_ok() {
                    let _ = handle.sync_data();
                }
            });
        Flusher {
            wake: spawned.ok().map(|_| wake),
        }
    }

    /// Asks for a flush; one already asked for and not begun covers this one too.
    fn request(&self) {
        if let Some(wake) = &self.wake {
            let _ = wake.try_send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that differ at every offset, so a block written at the wrong place shows.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    fn write_in_pieces(w: &mut DiskWriter, data: &[u8]) {
        // Odd-sized pieces, so that blocks fill across piece boundaries.
        for piece in data.chunks(7_001) {
            w.write(piece).unwrap();
        }
    }

    fn direct(w: &DiskWriter) -> bool {
        matches!(w.mode, Mode::Direct(_))
    }

    /// A writer on a new file in a directory of its own (kept alive with it).
    fn new_writer() -> (tempfile::TempDir, PathBuf, DiskWriter) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dl.part");
        let w = DiskWriter::new(File::create(&path).unwrap(), &path, Kept::AsStored);
        (dir, path, w)
    }

    fn finish_holds(w: DiskWriter, path: &Path, data: &[u8]) {
        assert_eq!(w.finish().unwrap(), data.len() as u64);
        assert!(std::fs::read(path).unwrap() == data, "content differs");
    }

    #[test]
    fn whole_blocks_go_direct_and_the_tail_through_the_page_cache() {
        let (dir, path, mut w) = new_writer();
        let data = pattern(3 * BLOCK + 12_345);
        write_in_pieces(&mut w, &data);
        assert!(
            direct(&w),
            "this filesystem ({}) refuses direct I/O, so the direct path is not tested",
            dir.path().display()
        );
        assert_eq!(
            w.written,
            3 * BLOCK as u64,
            "the first block buffered, two direct, the tail staged"
        );
        finish_holds(w, &path, &data);
    }

    #[test]
    fn a_refused_direct_write_falls_back_to_the_page_cache() {
        let (dir, path, mut w) = new_writer();
        let data = pattern(3 * BLOCK + 1);
        w.write(&data[..BLOCK]).unwrap();
        assert!(direct(&w), "direct I/O from the second block on");
        // A block one byte off its alignment: the kernel answers EINVAL, as a filesystem
        // without direct I/O does.
        w.mode = Mode::Direct(Direct::open_skewed(&path, 1).unwrap());
        write_in_pieces(&mut w, &data[BLOCK..]);
        assert!(
            matches!(w.mode, Mode::Buffered),
            "the writer did not fall back: this filesystem ({}) took a misaligned direct write \
             (tmpfs does), so the fallback is not tested here; set TMPDIR to a disk",
            dir.path().display()
        );
        finish_holds(w, &path, &data);
    }

    #[test]
    fn a_file_headed_for_cloud_storage_stays_in_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dl.part");
        let mut w = DiskWriter::new(File::create(&path).unwrap(), &path, Kept::UntilUploaded);
        let data = pattern(2 * WRITE_BEHIND as usize + BLOCK);
        write_in_pieces(&mut w, &data);
        assert!(matches!(w.mode, Mode::Transient), "no direct I/O");
        assert!(w.flusher.is_none(), "never flushed");
        finish_holds(w, &path, &data);
    }

    #[test]
    fn a_file_of_one_block_or_less_never_touches_direct_io() {
        let (_dir, path, mut w) = new_writer();
        let data = pattern(BLOCK - 1);
        write_in_pieces(&mut w, &data);
        assert!(matches!(w.mode, Mode::FirstBlock));
        finish_holds(w, &path, &data);
    }
}
