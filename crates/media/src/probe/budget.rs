//! A reader with a budget, for the parsers that probe a customer's file: it fails once the
//! parser has read more bytes than a file of this size can need, once a deadline has passed, or
//! once the caller gave up (the probe timed out). A parser led into a loop by a hostile file then
//! gets an error from its next read or seek and returns, instead of running on in the blocking
//! pool after the worker stopped waiting for it.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// What a probe may spend, shared with whoever waits for it and by every reader of the probe.
#[derive(Debug, Clone)]
pub struct Budget {
    bytes: u64,
    deadline: Instant,
    cancelled: Arc<AtomicBool>,
    read: Arc<AtomicU64>,
}

impl Budget {
    /// `bytes` to read in all, until `deadline`.
    pub fn new(bytes: u64, deadline: Instant) -> Self {
        Budget {
            bytes,
            deadline,
            cancelled: Arc::new(AtomicBool::new(false)),
            read: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Why the budget is spent, if it is: a parser's own error then says less than this.
    pub fn spent(&self) -> Option<String> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Some("probing was given up".into());
        }
        if Instant::now() >= self.deadline {
            return Some("probing took too long; the file may be malformed".into());
        }
        let read = self.read.load(Ordering::Relaxed);
        (read > self.bytes).then(|| {
            format!("the parser read {read} bytes, more than this file can need: it is malformed")
        })
    }

    /// The parser's reads fail from now on.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// The bytes a parser may read of a file of `len` bytes: every byte a few times over (they
    /// seek back to reread headers), and never less than a megabyte.
    pub fn for_file(len: u64) -> u64 {
        len.saturating_mul(4).max(1024 * 1024)
    }
}

pub struct BudgetReader<R> {
    inner: R,
    budget: Budget,
}

impl<R> BudgetReader<R> {
    pub fn new(inner: R, budget: Budget) -> Self {
        BudgetReader { inner, budget }
    }

    fn check(&self) -> io::Result<()> {
        match self.budget.spent() {
            None => Ok(()),
            Some(why) if Instant::now() >= self.budget.deadline => {
                Err(io::Error::new(io::ErrorKind::TimedOut, why))
            }
            Some(why) => Err(io::Error::other(why)),
        }
    }

    fn spend(&self, n: u64) {
        self.budget.read.fetch_add(n, Ordering::Relaxed);
    }
}

impl<R: Read> Read for BudgetReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check()?;
        let n = self.inner.read(buf)?;
        self.spend(n as u64);
        Ok(n)
    }
}

impl<R: Seek> Seek for BudgetReader<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.check()?;
        // A seek costs as a small read: a parser seeking in a loop runs out too.
        self.spend(512);
        self.inner.seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::time::Duration;

    use super::*;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[test]
    fn a_parser_reading_in_a_loop_runs_out() {
        let mut r = BudgetReader::new(Cursor::new(vec![7u8; 100]), Budget::new(1000, far()));
        let mut buf = [0u8; 100];
        let mut rounds = 0;
        let failed = loop {
            match r.read(&mut buf).and_then(|_| r.seek(SeekFrom::Start(0))) {
                Ok(_) => rounds += 1,
                Err(e) => break e,
            }
            assert!(rounds < 100, "the budget never ran out");
        };
        assert!(failed.to_string().contains("malformed"), "{failed}");
    }

    #[test]
    fn reads_fail_once_given_up_or_past_the_deadline() {
        let budget = Budget::new(u64::MAX, far());
        let mut r = BudgetReader::new(Cursor::new(vec![1u8; 10]), budget.clone());
        let mut buf = [0u8; 4];
        assert_eq!(r.read(&mut buf).unwrap(), 4);
        budget.cancel();
        assert!(r.read(&mut buf).is_err());
        let past = Budget::new(u64::MAX, Instant::now());
        let mut r = BudgetReader::new(Cursor::new(vec![1u8; 10]), past);
        assert_eq!(
            r.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
    }

    #[test]
    fn small_files_get_a_megabyte() {
        assert_eq!(Budget::for_file(10), 1024 * 1024);
        assert_eq!(Budget::for_file(10 << 20), 40 << 20);
    }
}
